#!/bin/sh
# modules_netacl.sh: netacl vetoes denied destinations (a binding's rule, a binding's default deny, a global rule on the destination): no connection at their sinks, their mail stays queued; allowed mail is delivered.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
[ -e "$MODDIR/netacl.la" ] || vt_skip "the netacl module is not built in $MODDIR"
SINK=$(vt_free_port)
INNER=$(vt_free_port)
vt_start_sink sink "$SINK"
# an "internal relay" on 127.0.0.9, which a global rule forbids to every binding
vt_start_sink inner "127.0.0.9:$INNER"

# vip1: a deny rule for 127.0.0.0/8; vip3: no rule, its own default deny;
# vip2: nothing of its own: the global rule (deny 127.0.0.9) and the global default allow.
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
  \"routes\": {\"inner.test\": \"127.0.0.9:$INNER\", \"*\": \"127.0.0.1:$SINK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [3600], \"veto_retry\": 1}},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"netacl\",
    \"options\": {
      \"default\": \"allow\",
      \"rules\": [{\"action\": \"deny\", \"cidr\": \"127.0.0.9\", \"comment\": \"internal relay\"}]
    },
    \"bindings\": {
      \"vip1\": {\"rules\": [{\"action\": \"deny\", \"cidr\": \"127.0.0.0/8\", \"comment\": \"no loopback from vip1\"}]},
      \"vip3\": {\"default\": \"deny\"}
    },
    \"domains\": {\"shut.test\": {\"default\": \"deny\"}}
  }]
}"
vt_start_daemon "$DL_CONF"
vt_assert_file_contains "netacl's ready line" "$VT_DAEMON_LOG" \
    "info [netacl] ready: 2 rule(s), 2 binding(s), 1 domain(s), 0 binding x domain(s), default allow"

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

vt_log "vip1, vip3 and vip2-to-127.0.0.9 are vetoed on every attempt, and retried after veto_retry (1 s)"
dl_wait_vetoes 3 20 vip1 || vt_fail "fewer than 3 vetoed attempts for vip1: $(dl_vetoes vip1)"
dl_wait_vetoes 3 20 vip3 || vt_fail "fewer than 3 vetoed attempts for vip3: $(dl_vetoes vip3)"
dl_wait 1 20 outcome vetoed domain denied.test binding vip1 || vt_fail "no veto line for vip1"
dl_wait 1 20 outcome vetoed domain closed.test binding vip3 || vt_fail "no veto line for vip3"
dl_wait 1 20 outcome vetoed domain inner.test binding vip2 || vt_fail "no veto line for inner.test"
vt_assert_match "vip1's veto in the delivery log" "451 4.4.5 connection to 127.0.0.1:$SINK from binding \"vip1\" vetoed by module \"netacl\"*" \
    "$(dl_get reply outcome vetoed domain denied.test | sed -n 1p)"
vt_assert_file_contains "netacl's line naming vip1's rule" "$VT_DAEMON_LOG" \
    "notice [netacl] denied connection to 127.0.0.1:$SINK (domain denied.test) from binding \"vip1\" (slot 1): rule bindings.vip1.rules[0] deny 127.0.0.0/8 (\"no loopback from vip1\")"
vt_assert_file_contains "netacl's line naming vip3's default" "$VT_DAEMON_LOG" \
    "notice [netacl] denied connection to 127.0.0.1:$SINK (domain closed.test) from binding \"vip3\" (slot 3): no rule matched, binding \"vip3\"'s default is deny"
vt_assert_file_contains "netacl's line naming the global rule" "$VT_DAEMON_LOG" \
    "notice [netacl] denied connection to 127.0.0.9:$INNER (domain inner.test) from binding \"vip2\" (slot 2): rule rules[0] deny 127.0.0.9 (\"internal relay\")"
vt_assert_file_contains "the core's veto line" "$VT_DAEMON_LOG" \
    "connection to 127.0.0.1:$SINK from binding \"vip1\" vetoed by module \"netacl\" (returned 1)"
vt_assert_eq "vip1's veto holds its recipient" 1 "$(dl_get waiting outcome vetoed domain denied.test | sed -n 1p)"
vt_assert_eq "vip3's veto holds its recipient" 1 "$(dl_get waiting outcome vetoed domain closed.test | sed -n 1p)"
vt_assert_eq "inner.test's veto holds its recipient" 1 "$(dl_get waiting outcome vetoed domain inner.test | sed -n 1p)"

vt_log "nothing reached the denied sink or the sink from 127.0.0.2 / 127.0.0.4; their mail is still queued"
vt_assert_eq "connections at the 127.0.0.9 sink" 0 "$(vt_sink_count inner connect)"
vt_assert_eq "connections from vip1 at the sink" 0 "$(vt_sink_count sink connect peer 127.0.0.2)"
vt_assert_eq "connections from vip3 at the sink" 0 "$(vt_sink_count sink connect peer 127.0.0.4)"
vt_assert_eq "messages at the sink" 2 "$(vt_sink_count sink message)"
for d in denied.test closed.test inner.test; do
    vt_assert_eq "delivered or bounced lines for $d" 0 \
        "$(($(dl_count outcome delivered domain "$d") + $(dl_count outcome bounced domain "$d")))"
done
vt_assert_eq "delivered lines for allowed.test" 2 "$(dl_count outcome delivered domain allowed.test)"
ids=$(dl_get id | grep -v '^null$' | sort -u)
# the held messages are counted on their veto lines ("waiting"), not named per try
vt_assert_eq "messages named in the delivery log (the two delivered)" 2 "$(echo "$ids" | grep -c .)"
vt_wait_until 10 sh -c "[ \$(ls '$VT_DIR/spool/queue' | grep -c '\\.env\$') -eq 3 ]" ||
    vt_fail "expected 3 messages left in the spool, found: $(ls "$VT_DIR/spool/queue")"
for id in $ids; do
    rcpts=$(grep '^rcpt ' "$VT_DIR/spool/queue/$id.env" 2>/dev/null | sed 's/^rcpt //' | sort | tr '\n' ' ')
    case $(dl_get rcpt id "$id" | sort -u | tr '\n' ' ') in
        "user@allowed.test ")
            [ ! -e "$VT_DIR/spool/queue/$id.env" ] || vt_fail "delivered $id is still in the spool" ;;
        "user@denied.test "|"user@closed.test ")
            [ -f "$VT_DIR/spool/queue/$id.env" ] && [ -f "$VT_DIR/spool/queue/$id.body" ] ||
                vt_fail "$id ($(dl_get rcpt id "$id" | sed -n 1p)) left the spool" ;;
        "both@allowed.test ")
            # the two-destination message: its inner.test recipient is held by the veto
            [ -f "$VT_DIR/spool/queue/$id.body" ] || vt_fail "the two-destination message $id left the spool"
            vt_assert_eq "recipients in $id's envelope" "both@allowed.test both@inner.test " "$rcpts"
            vt_assert_eq "delivery-log outcomes of $id's delivered recipient" delivered \
                "$(dl_get outcome id "$id" rcpt both@allowed.test | sort -u)" ;;
        *) vt_fail "spool id $id has unexpected delivery-log recipients: $(dl_get rcpt id "$id" | sort -u | tr '\n' ' ')" ;;
    esac
done

vt_log "after a restart the denied recipients are still pending, the delivered one is not retried"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
: >"$DL_LOG"
vt_start_daemon "$DL_CONF"
dl_wait_vetoes 2 20 vip2 || vt_fail "inner.test is not retried (twice) after the restart"
dl_wait 1 20 outcome vetoed domain inner.test || vt_fail "no veto line for inner.test after the restart"
vt_assert_eq "both@allowed.test lines after the restart" 0 "$(dl_count rcpt both@allowed.test)"
vt_assert_eq "messages at the sink after the restart" 2 "$(vt_sink_count sink message)"
vt_assert_eq "connections at the 127.0.0.9 sink after the restart" 0 "$(vt_sink_count inner connect)"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
