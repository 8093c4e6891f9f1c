#!/bin/sh
# record_faults.sh: outcome records (D, T) and removals that fail keep the message in the spool; after a restart nothing is lost (recipients whose record failed may be delivered again).
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"
. "$VIPMTA_TOP_SRCDIR/t/lib/faults.sh"

dl_init
vt_faults_init
SINK=$(vt_free_port)
vt_start_sink sink "$SINK" --rule 'rcpt:later@*=451 4.3.0 try again:1'
dl_config "{
  \"routes\": {\"dest.test\": \"127.0.0.1:$SINK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [1]}}
}"
vt_start_daemon "$DL_CONF"

spool_empty() {
    [ -z "$(ls "$VT_DIR/spool/queue")" ]
}

vt_log "--- ID.st cannot be written: the D and T records fail"
vt_faults "write path=*/queue/*.st count=0 errno=ENOSPC"
dl_send alice@src.test now@dest.test,later@dest.test "records fail"
vt_sink_wait sink 2 30 message headers.x-test-id "records fail" >/dev/null ||
    vt_fail "not both recipients delivered"
vt_wait_until 10 grep -q "cannot record the delivery" "$VT_DAEMON_LOG" || vt_fail "no log line for the failed D record"
vt_assert_file_contains "the failed T record" "$VT_DAEMON_LOG" "cannot record the deferral"
ID=$(dl_spool_ids)
[ -n "$ID" ] || vt_fail "the message was removed although its outcomes were never recorded"
vt_log "message $ID stays in the spool (its outcomes are not on disk)"

vt_log "--- ID.env cannot be removed: the message stays whole"
vt_faults "unlinkat path=*/queue/*.env count=0 errno=EIO"
dl_send alice@src.test gone@dest.test "removal fails"
vt_sink_wait sink 1 30 message headers.x-test-id "removal fails" >/dev/null || vt_fail "not delivered"
vt_wait_until 10 grep -q "cannot remove: Input/output error; the message stays whole" "$VT_DAEMON_LOG" ||
    vt_fail "no log line for the failed removal"
GONE=$(dl_spool_ids | grep -v "$ID")
[ -n "$GONE" ] && [ -f "$VT_DIR/spool/queue/$GONE.body" ] || vt_fail "the message was not kept whole"

vt_log "--- restart with a healthy disk: nothing lost, the spool drains"
vt_faults ""
vt_stop_daemon || vt_fail "the daemon did not stop cleanly"
vt_start_daemon "$DL_CONF"
vt_assert_file_contains "both recovered" "$VT_DAEMON_LOG" "spool recovered: 2 messages, 3 recipients pending, 0 quarantined"
vt_wait_until 30 spool_empty || vt_fail "spool not empty: $(ls "$VT_DIR/spool/queue")"
for r in now@dest.test later@dest.test gone@dest.test; do
    c=$(vt_sink_count sink message rcpts "$r")
    [ "$c" -ge 1 ] || vt_fail "$r was lost"
    vt_log "$r delivered $c times"
done
vt_stop_daemon || vt_fail "the daemon exited with status $?"
