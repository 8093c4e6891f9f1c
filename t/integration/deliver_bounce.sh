#!/bin/sh
# deliver_bounce.sh: a 5xx reply bounces the recipient: a DSN from <> with Final-Recipient reaches the sender's domain.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
SINK=$(vt_free_port)
BACK=$(vt_free_port)
mkdir -p "$VT_DIR/back-mail"
vt_start_sink sink "$SINK" --rule 'rcpt:bad@*=550 5.1.1 no such user here'
vt_start_sink back "$BACK" --save-dir "$VT_DIR/back-mail"
dl_config "{
  \"routes\": {\"bounce.test\": \"127.0.0.1:$SINK\", \"sender.test\": \"127.0.0.1:$BACK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [1]}}
}"
vt_start_daemon "$DL_CONF"

dl_send alice@sender.test good@bounce.test,bad@bounce.test "bounce one of two"
vt_sink_wait sink 1 20 message rcpts good@bounce.test >/dev/null || vt_fail "good@ not delivered"
vt_assert_eq "bad@ not delivered" 0 "$(vt_sink_count sink message rcpts bad@bounce.test)"
dl_wait 1 10 outcome bounced rcpt bad@bounce.test reply '550 5.1.1 no such user here' ||
    vt_fail "no bounced line for bad@"

vt_log "the DSN reaches the sender's domain"
vt_sink_wait back 1 30 message mail_from '' rcpts alice@sender.test >/dev/null ||
    vt_fail "no DSN from <> for alice@sender.test (back sink: $(vt_sink_count back message) messages)"
file=$(vt_sink_get back message file rcpts alice@sender.test)
[ -f "$file" ] || vt_fail "the back sink did not save the DSN ($file)"
grep -q '^Final-Recipient: rfc822; *bad@bounce.test' "$file" || vt_fail "no Final-Recipient for bad@ in the DSN: $(cat "$file")"
grep -q '550 5.1.1 no such user here' "$file" || vt_fail "the DSN does not carry the remote reply"
if grep -q '^Final-Recipient: rfc822; *good@' "$file"; then
    vt_fail "the DSN reports the delivered recipient"
fi
vt_assert_eq "one DSN" 1 "$(vt_sink_count back message)"
dl_wait 1 10 outcome delivered rcpt alice@sender.test || vt_fail "no delivered line for the DSN"
vt_wait_until 10 sh -c "[ -z \"\$(ls '$VT_DIR/spool/queue')\" ]" || vt_fail "spool not empty at the end"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
