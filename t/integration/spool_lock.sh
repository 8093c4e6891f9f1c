#!/bin/sh
# spool_lock.sh: a second daemon on a spool that a running daemon holds refuses to start (even with no control socket to probe), and takes it once the first one is killed with -9.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
VIPMTA=$VIPMTA_TOP_BUILDDIR/core/vipmta
SINK=$(vt_free_port)
vt_start_sink sink "$SINK"
dl_config "{\"control_socket\": \"\", \"routes\": {\"*\": \"127.0.0.1:$SINK\"}}"
vt_start_daemon "$DL_CONF"

# the same spool, another port: only the spool lock can stop it
SECOND=$VT_DIR/second.json
"$VT_PYTHON" - "$DL_CONF" "$SECOND" "$(vt_free_port)" <<'PY' || vt_error "cannot write $SECOND"
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["listen"] = [{"address": "127.0.0.1", "port": int(sys.argv[3])}]
json.dump(cfg, open(sys.argv[2], "w"), indent=2)
PY
out=$(timeout 30 "$VIPMTA" -f -c "$SECOND" 2>&1)
status=$?
vt_assert_eq "exit status of the second daemon" 1 "$status"
vt_assert_match "the second daemon's error" \
    "*spool_dir $VT_DIR/spool: in use by another vipmta process (it holds the spool's lock): stop that one first, or give this one a spool_dir of its own*" \
    "$out"
vt_daemon_running || vt_fail "the first daemon died when the second one tried the spool"

vt_log "the first daemon still owns the spool: mail flows"
dl_send sender@src.test user@lock.test "after the refusal"
dl_wait 1 30 outcome delivered || vt_fail "the first daemon did not deliver after the refusal"

vt_log "kill -9 releases the lock: a new daemon starts on the same spool"
vt_kill_daemon
vt_start_daemon "$SECOND"
vt_assert_file_contains "the new daemon started" "$VT_DAEMON_LOG" "started (hostname"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
echo "PASS: spool_lock"
