#!/bin/sh
# ops_run_user.sh: what the run user controls never reaches root: a spool file or folder it replaced by a symbolic link to root's file is refused at start and at recovery (root's file untouched); started in the background, the daemon's start errors reach the terminal and its exit status.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
[ "$(id -u)" = 0 ] || vt_skip "needs root (the daemon starts as root and drops to nobody)"
getent passwd nobody >/dev/null 2>&1 || vt_skip "no user nobody"
BIN=$VIPMTA_TOP_BUILDDIR/core/vipmta
SINK=$(vt_free_port)
mkdir -p "$VT_DIR/log" && chown nobody "$VT_DIR/log"
DL_LOG=$VT_DIR/log/delivery.jsonl
dl_config "{\"user\": \"nobody\", \"delivery_log\": \"$DL_LOG\",
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"}, \"domains\": {\"*\": {\"retry_schedule\": [3600]}}}"
printf 'root secret\n' >"$VT_DIR/rootfile" && chmod 600 "$VT_DIR/rootfile"
# root_intact WHAT: root's file still root's, mode 600, with its content
root_intact() {
    vt_assert_eq "$1: root's file (owner, mode, content)" "root 600 root secret" \
        "$(stat -c '%U %a' "$VT_DIR/rootfile") $(cat "$VT_DIR/rootfile")"
}

vt_log "a message stays queued (the destination is down)"
VIPMTA_RUN_AS_ROOT= vt_start_daemon "$DL_CONF"
dl_send a@src.test u@dest.test "kept"
dl_wait 1 20 outcome deferred || vt_fail "no deferral"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
ENV=$(ls "$VT_DIR"/spool/queue/*.env) || vt_fail "no message in the spool"
ID=$(basename "$ENV" .env)

vt_log "its status file replaced by a symbolic link to root's file: quarantined at recovery, root's file untouched"
rm -f "$VT_DIR/spool/queue/$ID.st"
ln -s "$VT_DIR/rootfile" "$VT_DIR/spool/queue/$ID.st" && chown -h nobody "$VT_DIR/spool/queue/$ID.st"
VIPMTA_RUN_AS_ROOT= vt_start_daemon "$DL_CONF"
vt_wait_until 10 grep -q "spool recovered" "$VT_DAEMON_LOG" || vt_fail "no recovery line"
vt_assert_file_contains "the quarantine line" "$VT_DAEMON_LOG" \
    "$ID.st unreadable: it is a symbolic link: moved $ID.* to $VT_DIR/spool/quarantine/"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
root_intact "after recovery"
[ -L "$VT_DIR/spool/quarantine/$ID.st" ] || vt_fail "the link was not moved to quarantine"

vt_log "the queue folder replaced by a symbolic link: refused at start"
mv "$VT_DIR/spool/queue" "$VT_DIR/spool/queue.real"
ln -s "$VT_DIR/elsewhere" "$VT_DIR/spool/queue" && chown -h nobody "$VT_DIR/spool/queue"
out=$(timeout 30 env -u VIPMTA_RUN_AS_ROOT "$BIN" -f -c "$DL_CONF" 2>&1) && vt_fail "started with spool/queue a symbolic link"
vt_assert_match "refusal" "*spool_dir: $VT_DIR/spool/queue is a symbolic link: refusing it*" "$out"
[ ! -e "$VT_DIR/elsewhere" ] || vt_fail "the daemon created the link's target"
rm "$VT_DIR/spool/queue" && mv "$VT_DIR/spool/queue.real" "$VT_DIR/spool/queue"

vt_log "in the background (no -f): a start error is printed and the exit status is 1"
ln -s "$VT_DIR/rootfile" "$VT_DIR/log/main.log" && chown -h nobody "$VT_DIR/log/main.log"
"$VT_PYTHON" -c "import json,sys; c=json.load(open(sys.argv[1])); c['log_file']=sys.argv[2]; json.dump(c, open(sys.argv[1],'w'))" \
    "$DL_CONF" "$VT_DIR/log/main.log"
timeout 30 env -u VIPMTA_RUN_AS_ROOT "$BIN" -c "$DL_CONF" >"$VT_DIR/bg.out" 2>&1
vt_assert_eq "exit status of a failed background start" 1 "$?"
vt_assert_match "its error on stderr" "*log_file: cannot open $VT_DIR/log/main.log as the run user: it is a symbolic link*not started*" \
    "$(cat "$VT_DIR/bg.out")"
root_intact "after the refused start"

vt_log "in the background, a good start exits 0 once the daemon runs"
rm "$VT_DIR/log/main.log"
timeout 30 env -u VIPMTA_RUN_AS_ROOT "$BIN" -c "$DL_CONF" >"$VT_DIR/bg2.out" 2>&1
vt_assert_eq "exit status of a good background start (output: $(cat "$VT_DIR/bg2.out"))" 0 "$?"
vt_wait_until 10 grep -q "started" "$VT_DIR/log/main.log" || vt_fail "no start line in the log"
PID=$(pgrep -f "$BIN -c $DL_CONF" | head -1)
[ -n "$PID" ] || vt_fail "no daemon running after the background start"
kill -TERM "$PID"
vt_wait_until 20 grep -q "notice \[core\] stopped" "$VT_DIR/log/main.log" || vt_fail "the background daemon did not stop"
vt_assert_eq "owner of the log it created" nobody "$(stat -c %U "$VT_DIR/log/main.log")"
root_intact "at the end"
