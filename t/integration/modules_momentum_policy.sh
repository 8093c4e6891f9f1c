#!/bin/sh
# modules_momentum_policy.sh: five modules written against Momentum's documented API (t/modules/momentum/) run in the daemon: a binding-choice hook picks vip1 in the pool (the sink sees 127.0.0.2); a veto asking for another binding moves mail from vip1 and it arrives from vip2's address, pinned mail stays held; a permanent veto bounces with the module's reply (the DSN says it); a 4.7.x deferral moves mail to the next binding of the group (the worked example of docs/writing-modules.md); a throttle's later spaces the connections at the sink; the log hooks note each delivery, deferral and failure with the reply.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/t/modules/momentum
[ -e "$MODDIR/group_picker.la" ] || vt_skip "the Momentum test modules are not built in $MODDIR (make check builds them)"
SINK=$(vt_free_port)
DSN=$(vt_free_port)
mkdir -p "$VT_DIR/dsn"
# picky.test defers its first recipient (from vip1, the picked binding) for policy
# reasons, once; fail.test refuses for good
vt_start_sink sink "$SINK" --rule 'rcpt:*@picky.test=451 4.7.1 too much mail from you, try later:1' \
    --rule 'rcpt:*@fail.test=550 5.1.1 no such user'
# the senders' domain: the DSNs
vt_start_sink dsn "127.0.0.6:$DSN" --save-dir "$VT_DIR/dsn"

dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}, \"vip2\": {\"address\": \"127.0.0.3\"},
                 \"vip3\": {\"address\": \"127.0.0.4\"}},
  \"binding_groups\": {\"pool\": [\"vip1\", \"vip2\"]},
  \"default_binding_group\": \"pool\",
  \"binding_rules\": [{\"recipient_domain\": \"closed.test\", \"binding\": \"vip3\"},
                      {\"recipient_domain\": \"pinned.test\", \"binding\": \"vip1\"}],
  \"routes\": {\"src.test\": \"127.0.0.6:$DSN\", \"*\": \"127.0.0.1:$SINK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [3600], \"veto_retry\": 3600},
                \"slow.test\": {\"retry_schedule\": [3600], \"messages_per_connection\": 1}},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [
    {\"name\": \"group_picker\", \"debug_level\": \"info\", \"options\": {\"prefer\": \"vip1\"}},
    {\"name\": \"delivery_notes\", \"debug_level\": \"info\"},
    {\"name\": \"veto_by_domain\", \"debug_level\": \"notice\",
     \"domains\": {\"closed.test\": {\"veto\": \"permanent\", \"reply\": \"550 5.7.1 closed.test takes no mail from us\"},
                   \"moved.test\": {\"veto\": \"other_binding\", \"binding\": \"vip1\"},
                   \"pinned.test\": {\"veto\": \"other_binding\", \"binding\": \"vip1\"}}},
    {\"name\": \"rebind_on_defer\", \"debug_level\": \"notice\",
     \"domains\": {\"picky.test\": {\"from\": \"vip1\"}}},
    {\"name\": \"slow_start\", \"debug_level\": \"info\",
     \"domains\": {\"slow.test\": {\"interval\": 2}}}
  ]
}"
VIPMTA=$VIPMTA_TOP_BUILDDIR/core/vipmta
out=$("$VIPMTA" -t -c "$DL_CONF" 2>&1) || vt_fail "vipmta -t: $out"
vt_assert_eq "vipmta -t" ok "$out"
vt_start_daemon "$DL_CONF"
for m in group_picker delivery_notes veto_by_domain rebind_on_defer slow_start; do
    vt_assert_file_contains "$m's ready line" "$VT_DAEMON_LOG" "notice [$m] $m: ready"
done

vt_log "one message each to plain, moved, pinned, closed, picky and fail; three to slow.test"
for rcpt in a@plain.test m@moved.test p@pinned.test c@closed.test k@picky.test f@fail.test; do
    dl_send sender@src.test "$rcpt" "to $rcpt"
done
dl_send sender@src.test s@slow.test "slow" 3

vt_log "the binding choice: pool mail leaves from vip1 (127.0.0.2)"
vt_sink_wait sink 1 30 message rcpts a@plain.test >/dev/null || vt_fail "a@plain.test did not arrive"
vt_assert_eq "peer of a@plain.test" 127.0.0.2 "$(vt_sink_get sink message peer rcpts a@plain.test)"
vt_assert_file_contains "group_picker's choice" "$VT_DAEMON_LOG" "info [group_picker] group_picker: <a@plain.test> in group pool: vip1"

vt_log "another binding: moved.test's vip1 is vetoed, its message arrives from vip2 (127.0.0.3)"
vt_sink_wait sink 1 30 message rcpts m@moved.test >/dev/null || vt_fail "m@moved.test did not arrive"
vt_assert_eq "peer of m@moved.test" 127.0.0.3 "$(vt_sink_get sink message peer rcpts m@moved.test)"
vt_assert_file_contains "the module's veto line" "$VT_DAEMON_LOG" "notice [veto_by_domain] veto_by_domain: moved.test from vip1: vetoed (other_binding)"
vt_assert_file_contains "the core's move line" "$VT_DAEMON_LOG" \
    "moved.test (binding vip1): module \"veto_by_domain\" asked for another binding: 1 messages (1 recipients) moved"
vt_assert_file_contains "group_picker's vip1 refused when the message must leave it" "$VT_DAEMON_LOG" \
    "binding_group_choose_binding: module \"group_picker\" chose binding 1 (vip1) of group \"pool\": refused, the binding the message must leave; the core chooses"
vt_assert_eq "delivered lines of m@moved.test from vip1" 0 "$(dl_count outcome delivered rcpt m@moved.test binding vip1)"
vt_assert_eq "delivered lines of m@moved.test from vip2" 1 "$(dl_count outcome delivered rcpt m@moved.test binding vip2)"

vt_log "pinned mail (pinned.test names vip1) is not moved: held, never at the sink"
dl_wait 1 20 outcome vetoed domain pinned.test binding vip1 || vt_fail "pinned.test was not held"
vt_assert_file_contains "the core says the pinned mail waits" "$VT_DAEMON_LOG" \
    "pinned.test (binding vip1): module \"veto_by_domain\" asked for another binding: 0 messages (0 recipients) moved; the others (pinned, or no other binding of their group usable) wait"
vt_assert_eq "p@pinned.test at the sink" 0 "$(vt_sink_count sink message rcpts p@pinned.test)"

vt_log "a permanent veto: c@closed.test bounces with the module's reply, the DSN says it"
dl_wait 1 20 outcome bounced rcpt c@closed.test || vt_fail "c@closed.test did not bounce"
vt_assert_eq "c@closed.test's reply" "550 5.7.1 closed.test takes no mail from us" "$(dl_get reply outcome bounced rcpt c@closed.test)"
vt_assert_eq "connections from vip3 at the sink" 0 "$(vt_sink_count sink connect peer 127.0.0.4)"

vt_log "the worked example: picky.test deferred vip1 with 4.7.1; its mail moves to vip2 and arrives from 127.0.0.3"
vt_sink_wait sink 1 30 message rcpts k@picky.test >/dev/null || vt_fail "k@picky.test did not arrive"
vt_assert_eq "the refusal was seen by vip1" 127.0.0.2 "$(vt_sink_get sink reject peer stage rcpt rcpt k@picky.test)"
vt_assert_eq "peer of k@picky.test" 127.0.0.3 "$(vt_sink_get sink message peer rcpts k@picky.test)"
vt_assert_file_contains "rebind_on_defer's line" "$VT_DAEMON_LOG" \
    "notice [rebind_on_defer] rebind_on_defer: picky.test deferred vip1 (451 4.7.1 too much mail from you, try later): moving the mail to vip2"

vt_log "the DSNs: c@closed.test's from vip3 with the module's reply, f@fail.test's with the remote one"
vt_sink_wait dsn 2 30 message >/dev/null || vt_fail "the DSNs did not arrive: $(vt_sink_count dsn message) of 2"
dsn_of() {
    f=$(grep -l "Final-Recipient: rfc822; $1" "$VT_DIR"/dsn/*.eml | head -n 1)
    [ -n "$f" ] || vt_fail "no DSN for $1"
    tr -d '\r' <"$f" | tr '\n' ' ' | sed 's/  */ /g'
}
vt_assert_match "c@closed.test's DSN" "*Diagnostic-Code: smtp; 550 5.7.1 closed.test takes no mail from us*" "$(dsn_of c@closed.test)"
vt_assert_match "f@fail.test's DSN" "*Diagnostic-Code: smtp; 550 5.1.1 no such user*" "$(dsn_of f@fail.test)"
cfile=$(grep -l "Final-Recipient: rfc822; c@closed.test" "$VT_DIR"/dsn/*.eml | head -n 1)
vt_assert_eq "c@closed.test's DSN left from vip3 (the message's binding)" 127.0.0.4 \
    "$(vt_sink_get dsn message peer file "$cfile")"

vt_log "the throttle's later: slow.test's three connections at least 2 s apart"
vt_sink_wait sink 3 30 message rcpts s@slow.test >/dev/null || vt_fail "slow.test: $(vt_sink_count sink message rcpts s@slow.test) of 3"
gaps=$("$VT_PYTHON" - "$VT_DIR/sink.jsonl" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
conns = {e["conn"] for e in ev if e["event"] == "message" and e.get("rcpts") == ["s@slow.test"]}
t = sorted(e["t"] for e in ev if e["event"] == "connect" and e["conn"] in conns)
print(len(t), " ".join("%.1f" % (b - a) for a, b in zip(t, t[1:])))
print(int(len(t) == 3 and all(b - a >= 1.9 for a, b in zip(t, t[1:]))))
EOF
)
vt_log "slow.test connections and gaps (s): $(echo "$gaps" | sed -n 1p)"
vt_assert_eq "three connections, each at least 1.9 s after the one before ($(echo "$gaps" | sed -n 1p))" 1 "$(echo "$gaps" | sed -n 2p)"
vt_assert_eq "slow_start allowed three connections" 3 "$(grep -c 'info \[slow_start\] slow_start: slow.test from binding 1: connection allowed' "$VT_DAEMON_LOG")"

vt_log "the log hooks noted each outcome with the reply"
vt_assert_file_contains "a@plain.test delivered" "$VT_DAEMON_LOG" "info [delivery_notes] delivery_notes: delivered <a@plain.test> (domain plain.test): 250"
vt_assert_file_contains "m@moved.test delivered" "$VT_DAEMON_LOG" "info [delivery_notes] delivery_notes: delivered <m@moved.test> (domain moved.test): 250"
vt_assert_file_contains "k@picky.test deferred" "$VT_DAEMON_LOG" "info [delivery_notes] delivery_notes: deferred <k@picky.test> (domain picky.test): 451 4.7.1 too much mail from you, try later"
vt_assert_file_contains "k@picky.test delivered" "$VT_DAEMON_LOG" "info [delivery_notes] delivery_notes: delivered <k@picky.test> (domain picky.test): 250"
vt_assert_file_contains "f@fail.test failed" "$VT_DAEMON_LOG" "info [delivery_notes] delivery_notes: failed <f@fail.test> (domain fail.test): 550 5.1.1 no such user"
vt_assert_file_contains "c@closed.test failed" "$VT_DAEMON_LOG" "info [delivery_notes] delivery_notes: failed <c@closed.test> (domain closed.test): 550 5.7.1 closed.test takes no mail from us"
for n in $(dl_get rcpt outcome delivered | sort -u); do
    vt_assert_file_contains "the delivered $n is noted" "$VT_DAEMON_LOG" "delivery_notes: delivered <$n>"
done

vt_log "the vetoes by kind (vipmtactl bindings)"
json=$("$VIPMTA_TOP_BUILDDIR/core/vipmtactl" -c "$DL_CONF" --json bindings)
kinds() {
    echo "$json" | "$VT_PYTHON" -c '
import json, sys
b = [x for x in json.load(sys.stdin)["bindings"] if x["name"] == sys.argv[1]][0]
print(b["vetoes_permanent"], b["vetoes_other_binding"] > 0, b["moved_out"])' "$1"
}
vt_assert_eq "vip3: one permanent veto, none other, none moved" "1 False 0" "$(kinds vip3)"
vt_assert_eq "vip1: no permanent veto, some asking for another binding, one message moved" "0 True 1" "$(kinds vip1)"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
