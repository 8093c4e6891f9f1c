#!/bin/sh
# deliver_retry.sh: a 4xx reply, or the connection dropped after RCPT, defers the recipient; the retry delivers it once.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
SINK=$(vt_free_port)
vt_start_sink sink "$SINK" --rule 'rcpt:*@retry.test=451 4.3.0 try again later:1' \
    --rule 'rcpt:*@drop.test=close:1'
dl_config "{
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [1]}}
}"
vt_start_daemon "$DL_CONF"

dl_send sender@src.test user@retry.test "retry me"
vt_sink_wait sink 1 20 message rcpts user@retry.test >/dev/null || vt_fail "not delivered on retry"
vt_assert_eq "rejections at the sink" 1 "$(vt_sink_count sink reject stage rcpt rcpt user@retry.test)"
vt_assert_eq "deliveries at the sink" 1 "$(vt_sink_count sink message rcpts user@retry.test)"
dl_wait 1 10 outcome delivered rcpt user@retry.test || vt_fail "no delivered line"
vt_assert_eq "deferred lines" 1 "$(dl_count outcome deferred rcpt user@retry.test reply '451 4.3.0 try again later')"
id1=$(dl_get id outcome deferred rcpt user@retry.test)
id2=$(dl_get id outcome delivered rcpt user@retry.test)
vt_assert_eq "same message deferred then delivered" "$id1" "$id2"
vt_log "the connection drops after RCPT: deferred (an attempt was made), then delivered"
dl_send sender@src.test user@drop.test "drop me"
vt_sink_wait sink 1 20 message rcpts user@drop.test >/dev/null || vt_fail "not delivered after the drop"
dl_wait 1 10 outcome delivered rcpt user@drop.test || vt_fail "no delivered line after the drop"
vt_assert_match "deferral after the drop" "451 4.4.2 connection * (waiting for the reply to RCPT)*" \
    "$(dl_get reply outcome deferred rcpt user@drop.test)"
vt_assert_eq "deliveries of the dropped one" 1 "$(vt_sink_count sink message rcpts user@drop.test)"

vt_wait_until 10 sh -c "[ -z \"\$(ls '$VT_DIR/spool/queue')\" ]" || vt_fail "spool not empty after delivery"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
