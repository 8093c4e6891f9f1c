#!/bin/sh
# deliver_shutdown.sh: SIGTERM during deliveries loses nothing: unfinished mail stays spooled and goes out after a restart.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
SINK=$(vt_free_port)
vt_start_sink sink "$SINK" --delay-ms 150
dl_config "{
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"},
  \"domains\": {\"*\": {\"max_connections_per_binding\": 2, \"retry_schedule\": [1]}}
}"
vt_start_daemon "$DL_CONF"

dl_send sender@src.test user@slow.test "slow" 12
vt_sink_wait sink 1 20 message >/dev/null || vt_fail "nothing delivered before the stop"
vt_stop_daemon || vt_fail "the daemon exited with status $? at the first stop"
left=$(dl_spool_ids | wc -l)
got=$(vt_sink_count sink message)
vt_log "stopped with $got delivered and $left still spooled"
[ "$left" -ge 1 ] || vt_fail "everything was delivered before the stop: the test proves nothing (make the sink slower)"
[ $((left + got)) -ge 12 ] || vt_fail "mail lost: $got delivered + $left spooled < 12"
grep -q 'delivery stopped' "$VT_DAEMON_LOG" || vt_fail "no 'delivery stopped' line"

vt_log "restart: the rest goes out"
vt_start_daemon "$DL_CONF"
"$VT_PYTHON" - "$VT_DIR/sink.jsonl" <<'PY' || vt_fail "not every message arrived after the restart"
import json, sys, time
want = {"slow %d" % n for n in range(1, 13)}
end = time.time() + 60
while time.time() < end:
    seen = set()
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if r.get("event") == "message":
            seen.add(r.get("subject"))
    if want <= seen:
        sys.exit(0)
    time.sleep(0.2)
sys.exit("missing: %s" % sorted(want - seen))
PY
vt_wait_until 10 sh -c "[ -z \"\$(ls '$VT_DIR/spool/queue')\" ]" || vt_fail "spool not empty at the end"
vt_stop_daemon || vt_fail "the daemon exited with status $? at the second stop"
