#!/bin/sh
# ctl_queue.sh: vipmtactl queue list/show/flush/delete/bounce on mail held by a closed port with a long retry: deleted mail leaves the spool and is never delivered, bounced mail brings DSNs to the sender, flushed mail is delivered once the sink is up.
. "$VIPMTA_TOP_SRCDIR/t/integration/ctl_lib.sh"

dl_init
[ -x "$CTL" ] || vt_skip "core/vipmtactl is not built"
BACK=$(vt_free_port)
HOLD=$(vt_free_port) # nobody listens here until the flush
SLOW=$(vt_free_port) # answers slowly, and 451 to every RCPT
mkdir -p "$VT_DIR/back-mail"
vt_start_sink back "$BACK" --save-dir "$VT_DIR/back-mail"
vt_start_sink slow "$SLOW" --delay-ms 700 --rule 'rcpt:*=451 4.7.1 try again later'
dl_config "{
  \"routes\": {\"src.test\": \"127.0.0.1:$BACK\", \"hold.test\": \"127.0.0.1:$HOLD\",
              \"slow.test\": \"127.0.0.1:$SLOW\"},
  \"domains\": {\"*\": {\"retry_schedule\": [3600]}}
}"
vt_start_daemon "$DL_CONF"

dl_send sender@src.test a@hold.test "message A"
dl_send sender@src.test b@hold.test,c@hold.test "message B"
dl_send sender@src.test d@hold.test "message C"
dl_wait 4 30 outcome deferred || vt_fail "not all 4 recipients deferred: $(dl_count outcome deferred)"
set -- $(dl_spool_ids)
[ $# = 3 ] || vt_fail "expected 3 messages in the spool, found $#: $*"
A=$1 B=$2 C=$3

vt_log "queue list"
ctl_ok --json queue list
vt_assert_eq "total" 3 "$(ctl_py 'r["total"]')"
vt_assert_eq "ids in arrival order" "$A $B $C" "$(ctl_py '" ".join(m["id"] for m in r["messages"])')"
vt_assert_eq "recipients of B" "b@hold.test c@hold.test" "$(ctl_py '" ".join(x["address"] for x in r["messages"][1]["recipients"])')"
vt_assert_eq "states" '["delayed", "delayed", "delayed", "delayed"]' "$(ctl_py '[x["state"] for m in r["messages"] for x in m["recipients"]]')"
vt_assert_eq "attempts" '[1, 1, 1, 1]' "$(ctl_py '[x["attempts"] for m in r["messages"] for x in m["recipients"]]')"
vt_assert_eq "next attempt about an hour away" true "$(ctl_py 'all(3000 < x["next_attempt"] - __import__("time").time() <= 3600 for m in r["messages"] for x in m["recipients"])')"
vt_assert_eq "sender" sender@src.test "$(ctl_py 'r["messages"][0]["sender"]')"
ctl_ok queue list
vt_assert_eq "table: A's recipient" a@hold.test "$(ctl_table_cell "$A" RECIPIENT)"
vt_assert_eq "table: A's state" delayed "$(ctl_table_cell "$A" STATE)"
vt_assert_eq "table: C's sender" "<sender@src.test>" "$(ctl_table_cell "$C" SENDER)"
vt_assert_match "table: next attempt" "in [15]*m*" "$(ctl_table_cell "$C" "NEXT ATTEMPT")"
printf '%s\n' "$CTL_OUT" | grep -q '^  *c@hold.test  *delayed  *1  *in ' || vt_fail "table: no continuation row for c@: $CTL_OUT"
vt_assert_eq "table: footer" "3 messages queued" "$(printf '%s\n' "$CTL_OUT" | tail -n 1)"
ctl_ok queue list --limit 1 --json
vt_assert_eq "limit: shown" 1 "$(ctl_py 'len(r["messages"])')"
vt_assert_eq "limit: total" 3 "$(ctl_py 'r["total"]')"
ctl_ok queue list --limit 1
vt_assert_eq "limit: footer" "3 messages queued (first 1 shown; --limit N shows more)" "$(printf '%s\n' "$CTL_OUT" | tail -n 1)"
ctl queue list --limit 0
vt_assert_eq "bad limit: exit status" 1 "$CTL_RC"
vt_assert_match "bad limit" "vipmtactl: queue list --limit: expected a number from 1 to *" "$CTL_ERR"

vt_log "queue show"
ctl_ok --json queue show "$B"
vt_assert_eq "show: id" "$B" "$(ctl_py 'r["message"]["id"]')"
vt_assert_eq "show: client" 127.0.0.1 "$(ctl_py 'r["message"]["client"]')"
vt_assert_eq "show: recipients" '[["b@hold.test", "hold.test", "delayed"], ["c@hold.test", "hold.test", "delayed"]]' \
    "$(ctl_py '[[x["address"], x["domain"], x["state"]] for x in r["message"]["recipients"]]')"
ctl_ok queue show "$B"
printf '%s\n' "$CTL_OUT" | grep -q '^sender  *<sender@src.test>$' || vt_fail "show table: no sender line: $CTL_OUT"
vt_assert_eq "show table: c@ attempts" 1 "$(ctl_table_cell c@hold.test ATTEMPTS)"

vt_log "domains: the held domain and its last error"
ctl_ok --json domains hold.test
vt_assert_eq "hold.test delayed" 4 "$(ctl_py 'r["domains"][0]["delayed"]')"
vt_assert_match "hold.test last error" "*127.0.0.1:$HOLD*refused*" "$(ctl_py 'r["domains"][0]["last_error"]')"

vt_log "queue delete: A leaves the spool, without a DSN"
ctl_ok --json queue delete "$A"
vt_assert_eq "delete: deleted" 1 "$(ctl_py 'r["deleted"]')"
vt_assert_eq "delete: in flight" 0 "$(ctl_py 'r["in_flight"]')"
vt_wait_until 10 sh -c "! ls '$VT_DIR/spool/queue/' | grep -q '^$A'" || vt_fail "$A is still in the spool: $(ls "$VT_DIR/spool/queue")"
ctl queue show "$A"
vt_assert_eq "show deleted: exit status" 1 "$CTL_RC"
vt_assert_eq "show deleted" "vipmtactl: no message $A in the queue (vipmtactl queue list shows the ids)" "$CTL_ERR"
ctl queue delete "$A"
vt_assert_eq "delete again: exit status" 1 "$CTL_RC"
grep -q "$A: deleted by the operator" "$VT_DAEMON_LOG" || vt_fail "no log line for the deletion"

vt_log "queue bounce: B's two recipients bounce, DSNs reach the sender"
ctl_ok queue bounce "$B"
vt_assert_eq "bounce output" "$B: bounced 2 recipients" "$CTL_OUT"
vt_sink_wait back 2 30 message mail_from '' rcpts sender@src.test >/dev/null ||
    vt_fail "no 2 DSNs from <> to sender@src.test (back sink: $(vt_sink_count back message) messages)"
for rcpt in b@hold.test c@hold.test; do
    grep -l "^Final-Recipient: rfc822; *$rcpt" "$VT_DIR"/back-mail/* >/dev/null 2>&1 || vt_fail "no DSN for $rcpt"
done
grep -q "bounced by the operator" $(vt_sink_get back message file rcpts sender@src.test | head -n 1) ||
    vt_fail "the DSN does not give the operator's reason"
vt_wait_until 10 sh -c "! ls '$VT_DIR/spool/queue/' | grep -q '^$B'" || vt_fail "$B is still in the spool"
dl_wait 2 10 outcome delivered rcpt sender@src.test || vt_fail "the DSNs were not logged as delivered"

vt_log "queue flush: C is delivered once the destination listens"
vt_start_sink hold "$HOLD"
ctl queue flush nosuch.test
vt_assert_eq "flush unknown: exit status" 1 "$CTL_RC"
ctl_ok queue flush hold.test
vt_assert_eq "flush output" "hold.test: 1 delayed recipients are ready now" "$CTL_OUT"
vt_sink_wait hold 1 20 message rcpts d@hold.test >/dev/null || vt_fail "C was not delivered after the flush"
vt_assert_eq "DSNs at the sender (for B only, none for A)" 2 "$(vt_sink_count back message)"
vt_assert_eq "messages at the held destination (A, B never)" 1 "$(vt_sink_count hold message)"
vt_wait_until 10 sh -c "[ -z \"\$(ls '$VT_DIR/spool/queue')\" ]" || vt_fail "spool not empty: $(ls "$VT_DIR/spool/queue")"
ctl_ok --json status
vt_assert_eq "queue empty" 0 "$(ctl_py 'r["queue"]["messages"]')"

# ctl_wait_in_flight ID: waits (10 s) until queue list shows a recipient of ID in flight.
ctl_wait_in_flight() {
    n=0
    while [ $n -lt 100 ]; do
        ctl_ok --json queue list
        [ "$(ctl_py '[x["state"] for m in r["messages"] if m["id"] == "'"$1"'" for x in m["recipients"]]')" = '["in_flight"]' ] && return 0
        sleep 0.1
        n=$((n + 1))
    done
    vt_fail "$1 was never in flight: $CTL_OUT"
}

vt_log "queue delete while the recipient is being delivered: it is dropped when the attempt ends"
dl_send sender@src.test e@slow.test "message E"
E=$(dl_spool_ids)
ctl_wait_in_flight "$E"
ctl_ok --json queue delete "$E"
vt_assert_eq "delete in flight: deleted now" 0 "$(ctl_py 'r["deleted"]')"
vt_assert_eq "delete in flight: in flight" 1 "$(ctl_py 'r["in_flight"]')"
vt_assert_match "delete in flight: note" "1 recipients are being delivered right now: each is deleted when its attempt ends*" "$(ctl_py 'r["note"]')"
vt_wait_until 20 sh -c "! ls '$VT_DIR/spool/queue/' | grep -q '^$E'" || vt_fail "$E is still in the spool after its attempt"
grep -q "$E: recipient <e@slow.test> dropped: the message was deleted by the operator during the attempt" "$VT_DAEMON_LOG" ||
    vt_fail "no log line for the dropped recipient"
vt_assert_eq "no DSN for the deleted message" 2 "$(vt_sink_count back message)"
dl_wait 1 10 outcome deleted rcpt e@slow.test ||
    vt_fail "the delivery log does not say the in-flight recipient was deleted"
vt_assert_eq "delivery log: E never logged as deferred" 0 "$(dl_count outcome deferred rcpt e@slow.test)"

vt_log "queue bounce while the recipient is being delivered: it bounces when the attempt ends"
dl_send sender@src.test f@slow.test "message F"
F=$(dl_spool_ids)
ctl_wait_in_flight "$F"
ctl_ok queue bounce "$F"
vt_assert_eq "bounce in flight" "$F: bounced 0 recipients
note: 1 recipients are being delivered right now: each is bounced when its attempt ends, unless the attempt delivered it" "$CTL_OUT"
vt_sink_wait back 3 30 message mail_from '' rcpts sender@src.test >/dev/null || vt_fail "no DSN for F"
grep -l "^Final-Recipient: rfc822; *f@slow.test" "$VT_DIR"/back-mail/* >/dev/null 2>&1 || vt_fail "the DSN is not for f@slow.test"
dl_wait 1 10 outcome bounced rcpt f@slow.test ||
    vt_fail "the delivery log does not say the in-flight recipient was bounced"
vt_wait_until 20 sh -c "[ -z \"\$(ls '$VT_DIR/spool/queue')\" ]" || vt_fail "spool not empty: $(ls "$VT_DIR/spool/queue")"
vt_assert_eq "nothing delivered at the slow sink" 0 "$(vt_sink_count slow message)"
vt_daemon_running || vt_fail "the daemon died"
vt_stop_daemon || vt_fail "the daemon exited with status $?"

vt_log "after a restart nothing of A or B comes back"
vt_start_daemon "$DL_CONF"
sleep 1
vt_assert_eq "messages at the held destination" 1 "$(vt_sink_count hold message)"
vt_assert_eq "a@ never delivered" 0 "$(vt_sink_count hold message rcpts a@hold.test)"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
