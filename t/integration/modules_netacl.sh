#!/bin/sh
# modules_netacl.sh: (the daemon started with a relative config path) netacl denies destinations (a binding's rule, a binding's default deny, a global rule on the destination) with permanent vetoes: no connection at their sinks, their recipients bounce at once with a reply naming the rule and its line in the config file (the DSN says it); allowed mail is delivered.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
[ -e "$MODDIR/netacl.la" ] || vt_skip "the netacl module is not built in $MODDIR"
SINK=$(vt_free_port)
INNER=$(vt_free_port)
DSN=$(vt_free_port)
mkdir -p "$VT_DIR/dsn"
vt_start_sink sink "$SINK"
# an "internal relay" on 127.0.0.9, which a global rule forbids to every binding
vt_start_sink inner "127.0.0.9:$INNER"
# where the senders' mail (the bounces) goes: allowed to every binding
vt_start_sink dsn "127.0.0.6:$DSN" --save-dir "$VT_DIR/dsn"

# vip1: a deny rule for the sink's address; vip3: its own default deny (but
# the senders' domain); vip2: nothing of its own: the global rule (deny
# 127.0.0.9) and the global default allow.
dl_config "{
  \"bindings\": {
    \"vip1\": {\"address\": \"127.0.0.2\"},
    \"vip2\": {\"address\": \"127.0.0.3\"},
    \"vip3\": {\"address\": \"127.0.0.4\"}
  },
  \"binding_rules\": [
    {\"recipient_domain\": \"denied.test\", \"binding\": \"vip1\"},
    {\"recipient_domain\": \"allowed.test\", \"binding\": \"vip2\"},
    {\"recipient_domain\": \"inner.test\", \"binding\": \"vip2\"},
    {\"recipient_domain\": \"closed.test\", \"binding\": \"vip3\"}
  ],
  \"routes\": {\"inner.test\": \"127.0.0.9:$INNER\", \"src.test\": \"127.0.0.6:$DSN\", \"*\": \"127.0.0.1:$SINK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [3600], \"veto_retry\": 1}},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"netacl\",
    \"options\": {
      \"default\": \"allow\",
      \"rules\": [{\"action\": \"deny\", \"cidr\": \"127.0.0.9\", \"comment\": \"internal relay\"}]
    },
    \"bindings\": {
      \"vip1\": {\"rules\": [{\"action\": \"deny\", \"cidr\": \"127.0.0.1\", \"comment\": \"no sink from vip1\"}]},
      \"vip3\": {\"default\": \"deny\", \"rules\": [{\"action\": \"allow\", \"cidr\": \"127.0.0.6\"}]}
    },
    \"domains\": {\"shut.test\": {\"default\": \"deny\"}}
  }]
}"
# where the config file has each rule (dl_config writes one key a line)
line_of() {
    grep -n "$1" "$DL_CONF" | head -n 1 | cut -d: -f1
}
VIP1_RULE=$(($(line_of '"no sink from vip1"') - 3))
GLOBAL_RULE=$(($(line_of '"internal relay"') - 3))
VIP3_DEFAULT=$(line_of '"default": "deny"')
# started with the config's name relative to the working folder, as
# ./scripts/demo does: the daemon keeps its absolute name, which the replies show
here=$(pwd)
cd "$(dirname "$DL_CONF")" || vt_error "cannot cd to the config's folder"
vt_start_daemon "$(basename "$DL_CONF")"
cd "$here" || vt_error "cannot cd back to $here"
vt_assert_file_contains "netacl's ready line" "$VT_DAEMON_LOG" \
    "info [netacl] ready: 3 rule(s), 2 binding(s), 1 domain(s), 0 binding x domain(s), default allow"

dl_send sender@src.test user@denied.test "via vip1"
dl_send sender@src.test user@closed.test "via vip3"
dl_send sender@src.test user@allowed.test "via vip2"
# one message, two recipients from vip2: one destination allowed, one denied
dl_send sender@src.test both@allowed.test,both@inner.test "via vip2, two destinations"

vt_log "vip2 to the sink on 127.0.0.1 (no rule matches, default allow) is delivered"
vt_sink_wait sink 2 30 message >/dev/null || vt_fail "the allowed messages did not arrive: $(vt_sink_count sink message) of 2"
vt_assert_eq "peer of user@allowed.test's delivery" 127.0.0.3 "$(vt_sink_get sink message peer rcpts user@allowed.test)"
vt_assert_eq "peer of both@allowed.test's delivery" 127.0.0.3 "$(vt_sink_get sink message peer rcpts both@allowed.test)"
vt_assert_eq "recipients of the two-destination message at the sink" '["both@allowed.test"]' \
    "$(vt_sink_get sink message rcpts rcpts both@allowed.test)"

vt_log "vip1, vip3 and vip2-to-127.0.0.9 are denied: permanent vetoes, the recipients bounce at once"
for d in denied.test closed.test inner.test; do
    dl_wait 1 20 outcome bounced domain "$d" || vt_fail "no bounce for $d"
done
vt_assert_eq "vip1's reply" "550 5.7.1 netacl: destination 127.0.0.1:$SINK denied by rule bindings.vip1.rules[0] (deny 127.0.0.1, \"no sink from vip1\") at $DL_CONF:$VIP1_RULE" \
    "$(dl_get reply outcome bounced domain denied.test)"
vt_assert_eq "vip3's reply" "550 5.7.1 netacl: destination 127.0.0.1:$SINK denied: no rule matched and binding \"vip3\"'s default is deny at $DL_CONF:$VIP3_DEFAULT" \
    "$(dl_get reply outcome bounced domain closed.test)"
vt_assert_eq "inner.test's reply" "550 5.7.1 netacl: destination 127.0.0.9:$INNER denied by rule rules[0] (deny 127.0.0.9, \"internal relay\") at $DL_CONF:$GLOBAL_RULE" \
    "$(dl_get reply outcome bounced domain inner.test)"
vt_assert_file_contains "netacl's line naming vip1's rule" "$VT_DAEMON_LOG" \
    "notice [netacl] denied connection to 127.0.0.1:$SINK (domain denied.test) from binding \"vip1\" (slot 1): rule bindings.vip1.rules[0] deny 127.0.0.1 (\"no sink from vip1\")"
vt_assert_file_contains "the core's veto line" "$VT_DAEMON_LOG" \
    "connection to 127.0.0.1:$SINK from binding \"vip1\" vetoed by module \"netacl\" (returned 1, permanent): 550 5.7.1 netacl:"
vt_assert_file_contains "the core's permanent line" "$VT_DAEMON_LOG" \
    "denied.test (binding vip1): vetoed permanently by module \"netacl\": the ready recipients bounce"

vt_log "the senders get DSNs saying why, from the binding of each message"
vt_sink_wait dsn 3 30 message >/dev/null || vt_fail "the DSNs did not arrive: $(vt_sink_count dsn message) of 3"
for rcpt in user@denied.test user@closed.test both@inner.test; do
    f=$(grep -l "Final-Recipient: rfc822; $rcpt" "$VT_DIR"/dsn/*.eml | head -n 1)
    [ -n "$f" ] || vt_fail "no DSN for $rcpt"
    vt_assert_match "the DSN of $rcpt says netacl's reason" "*Diagnostic-Code: smtp; 550 5.7.1 netacl: destination*" \
        "$(tr -d '\r' <"$f" | tr '\n' ' ' | sed 's/  */ /g')"
done
vt_assert_match "vip1's DSN names the rule's line" "*deny 127.0.0.1, \"no sink from vip1\") at*:$VIP1_RULE*" \
    "$(tr -d '\r' <"$(grep -l 'Final-Recipient: rfc822; user@denied.test' "$VT_DIR"/dsn/*.eml)" | tr '\n' ' ' | sed 's/  */ /g')"
vt_assert_eq "the DSN of vip1's message left from vip1" 127.0.0.2 "$(vt_sink_get dsn message peer rcpts sender@src.test | sort | head -n 1)"

vt_log "nothing reached the denied sink or the sink from 127.0.0.2 / 127.0.0.4; the vetoes are counted permanent"
vt_assert_eq "connections at the 127.0.0.9 sink" 0 "$(vt_sink_count inner connect)"
vt_assert_eq "connections from vip1 at the sink" 0 "$(vt_sink_count sink connect peer 127.0.0.2)"
vt_assert_eq "connections from vip3 at the sink" 0 "$(vt_sink_count sink connect peer 127.0.0.4)"
vt_assert_eq "messages at the sink" 2 "$(vt_sink_count sink message)"
vt_assert_eq "delivered lines for allowed.test" 2 "$(dl_count outcome delivered domain allowed.test)"
json=$("$VIPMTA_TOP_BUILDDIR/core/vipmtactl" -c "$DL_CONF" --json bindings)
for b in vip1 vip3; do
    vt_assert_eq "$b's vetoes: one, permanent" "1 1" "$(echo "$json" | "$VT_PYTHON" -c '
import json, sys
b = [x for x in json.load(sys.stdin)["bindings"] if x["name"] == sys.argv[1]][0]
print(b["vetoes"], b["vetoes_permanent"])' "$b")"
done
vt_wait_until 10 sh -c "[ \$(ls '$VT_DIR/spool/queue' | grep -c '\\.env\$') -eq 0 ]" ||
    vt_fail "expected an empty spool, found: $(ls "$VT_DIR/spool/queue")"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
