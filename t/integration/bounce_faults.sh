#!/bin/sh
# bounce_faults.sh: a bounce whose DSN cannot be written (disk full) keeps the original queued and is retried, across a restart too; once the disk has room exactly one DSN goes out and the original is removed.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"
. "$VIPMTA_TOP_SRCDIR/t/lib/faults.sh"

dl_init
vt_faults_init
MX=$(vt_free_port)
BACK=$(vt_free_port)
mkdir -p "$VT_DIR/back-mail"
vt_start_sink back "$BACK" --save-dir "$VT_DIR/back-mail"
dl_config "{
  \"routes\": {\"bounce.test\": \"127.0.0.1:$MX\", \"sender.test\": \"127.0.0.1:$BACK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [1]}}
}"
vt_start_daemon "$DL_CONF"

# the next hop is not there yet: the message waits in the queue
dl_send alice@sender.test bad@bounce.test "full disk bounce"
ID=$(dl_spool_ids)
[ -n "$ID" ] || vt_fail "the message is not in the spool"
vt_log "message $ID queued; now the disk is full (every write of a body fails) and the next hop says 550"
vt_faults "write path=*/queue/*.body count=0 errno=ENOSPC"
vt_start_sink mx "$MX" --rule 'rcpt:bad@*=550 5.1.1 no such user here'
dl_wait 1 20 outcome bounced rcpt bad@bounce.test || vt_fail "bad@ was not bounced"
vt_wait_until 20 sh -c "[ \$(grep -c 'cannot spool its DSN' '$VT_DAEMON_LOG') -ge 2 ]" ||
    vt_fail "the bounce was not tried again"
vt_assert_file_contains "the log says why and what happens" "$VT_DAEMON_LOG" \
    "recipient <bad@bounce.test>: cannot spool its DSN: No space left on device; not final, the bounce is tried again in 1 s"
[ -f "$VT_DIR/spool/queue/$ID.env" ] || vt_fail "the original was removed without its DSN"
vt_assert_eq "DSNs sent while the disk is full" 0 "$(vt_sink_count back message)"

vt_log "a restart while the disk is still full: the original comes back, its recipient pending"
vt_stop_daemon || vt_fail "the daemon did not stop cleanly"
vt_start_daemon "$DL_CONF"
vt_assert_file_contains "recovered" "$VT_DAEMON_LOG" "spool recovered: 1 messages, 1 recipients pending"
vt_wait_until 20 sh -c "[ \$(grep -c 'cannot spool its DSN' '$VT_DAEMON_LOG') -ge 3 ]" ||
    vt_fail "the bounce was not tried after the restart"

vt_log "room on the disk again: one DSN, then the original goes"
vt_faults ""
vt_sink_wait back 1 30 message mail_from '' rcpts alice@sender.test >/dev/null ||
    vt_fail "no DSN after the disk got room"
vt_wait_until 20 sh -c "[ -z \"\$(ls '$VT_DIR/spool/queue')\" ]" ||
    vt_fail "spool not empty: $(ls "$VT_DIR/spool/queue")"
sleep 1
vt_assert_eq "DSNs" 1 "$(vt_sink_count back message)"
file=$(vt_sink_get back message file rcpts alice@sender.test)
grep -q '^Final-Recipient: rfc822; *bad@bounce.test' "$file" || vt_fail "the DSN does not name bad@: $(cat "$file")"
vt_assert_eq "bad@ accepted by the next hop" 0 "$(vt_sink_count mx message)"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
