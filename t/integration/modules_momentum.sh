#!/bin/sh
# modules_momentum.sh: three modules written against Momentum's documented API (t/modules/momentum/) run in the daemon: the TOS each binding's connections carry at the sink (by binding name, per binding, domain and binding x domain), a circuit that opens on a failing domain from its domain_record counters, a connection logger in two instances with options of their own; their option errors from vipmta -t; a reload starting a new generation.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/t/modules/momentum
[ -e "$MODDIR/tos_marker.la" ] || vt_skip "the Momentum test modules are not built in $MODDIR (make check builds them)"
SINK=$(vt_free_port)
# broken.test's recipients are deferred on every attempt, and the connection closed (421)
vt_start_sink sink "$SINK" --rule 'rcpt:*@broken.test=421 4.3.2 closing, try again later'

# which binding carries each domain: vip1 for one, ef, broken; vip2 for two, domain, pair
MM_RULES=""
for d in one:vip1 ef:vip1 broken:vip1 two:vip2 domain:vip2 pair:vip2; do
    MM_RULES="$MM_RULES${MM_RULES:+, }{\"recipient_domain\": \"${d%:*}.test\", \"binding\": \"${d#*:}\"}"
done
# mm_config CONN_LOGGER_A_PREFIX: the test's config (the prefix of conn_logger "a" changes on reload)
mm_config() {
    dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}, \"vip2\": {\"address\": \"127.0.0.3\"}},
  \"binding_groups\": {\"pool\": [\"vip1\", \"vip2\"]},
  \"binding_rules\": [$MM_RULES],
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [1], \"veto_retry\": 1}},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [
    {\"name\": \"tos_marker\", \"debug_level\": \"info\",
     \"options\": {\"tos_by_binding\": {\"vip1\": \"32\"}},
     \"bindings\": {\"vip2\": {\"tos\": 72, \"mark\": 0}},
     \"domains\": {\"domain.test\": {\"tos\": 184}, \"ef.test\": {\"tos\": 184}},
     \"binding_domains\": {\"vip2\": {\"pair.test\": {\"tos\": 160}}}},
    {\"name\": \"circuit_breaker\", \"debug_level\": \"notice\",
     \"options\": {\"min_attempts\": 1000},
     \"domains\": {\"broken.test\": {\"min_attempts\": 2, \"max_failure_percent\": 50}}},
    {\"name\": \"conn_logger\", \"instance\": \"a\", \"debug_level\": \"info\",
     \"options\": {\"prefix\": \"$1\"}, \"bindings\": {\"vip2\": {\"log_connections\": false}}},
    {\"name\": \"conn_logger\", \"instance\": \"b\", \"debug_level\": \"info\",
     \"options\": {\"prefix\": \"b\"}, \"bindings\": {\"vip1\": {\"prefix\": \"b-vip1\"}}}
  ]
}"
}
mm_config a
VIPMTA=$VIPMTA_TOP_BUILDDIR/core/vipmta

vt_log "vipmta -t and -M: the Momentum modules load, their hooks in chain order"
out=$("$VIPMTA" -t -c "$DL_CONF" 2>&1) || vt_fail "vipmta -t: $out"
vt_assert_eq "vipmta -t" ok "$out"
out=$("$VIPMTA" -M -c "$DL_CONF" 2>/dev/null) || vt_fail "vipmta -M failed"
vt_assert_eq "the post-bind chain" "1 circuit_breaker 2 tos_marker 3 conn_logger:a 4 conn_logger:b" \
    "$(echo "$out" | awk '/^[a-z]/ { name = $1 } /hook core_connection_post_bind/ { print $4, name }' |
        sort -n | tr '\n' ' ' | sed 's/ $//')"

vt_log "their options are checked as the native modules' are: type, the module's check, scope, name"
"$VT_PYTHON" - "$DL_CONF" "$VT_DIR/bad.json" <<'EOF' || vt_error "cannot write bad.json"
import json, sys
cfg = json.load(open(sys.argv[1]))
tos = cfg["modules"][0]
tos["bindings"]["vip2"]["tos"] = 300
tos["options"]["toss"] = 1
tos["domains"]["domain.test"]["mark"] = 7
cfg["modules"][1]["options"]["min_attempts"] = "many"
cfg["modules"][2]["options"]["log_connections"] = "maybe"
json.dump(cfg, open(sys.argv[2], "w"))
EOF
out=$("$VIPMTA" -t -c "$VT_DIR/bad.json" 2>&1) && vt_fail "vipmta -t accepted bad options: $out"
vt_assert_eq "vipmta -t on bad options" "modules[0].options: unknown key \"toss\" (allowed: tos_by_binding, tos, mark)
modules[0].bindings.vip2.tos: tos must be a number from 0 to 255, not 300
modules[0].domains.domain.test.mark: cannot be set in \"domains\" (its fallback \"Binding>Global\" allows: options, bindings)
modules[1].options.min_attempts: must be an integer, not a string
modules[2].options.log_connections: must be true or false, not a string" "$out"

vt_start_daemon "$DL_CONF"
vt_assert_file_contains "tos_marker's ready line" "$VT_DAEMON_LOG" "notice [tos_marker] tos_marker: ready"
vt_assert_file_contains "circuit_breaker's ready line" "$VT_DAEMON_LOG" "notice [circuit_breaker] circuit_breaker: ready"

vt_log "TOS by binding name (vip1), per binding (vip2), per domain over binding, per binding x domain"
for rcpt in a@one.test b@ef.test c@two.test d@domain.test e@pair.test; do
    dl_send sender@src.test "$rcpt" "to $rcpt"
done
vt_sink_wait sink 5 30 message >/dev/null || vt_fail "the sink got $(vt_sink_count sink message) of 5 messages"
vt_assert_eq "one.test from vip1" 127.0.0.2 "$(vt_sink_get sink message peer rcpts a@one.test)"
vt_assert_eq "two.test from vip2" 127.0.0.3 "$(vt_sink_get sink message peer rcpts c@two.test)"
# RECIPIENT TOS WHY: the byte its message and its connection's handshake carried
while read -r rcpt tos why; do
    vt_assert_eq "TOS to $rcpt ($why)" "$tos" "$(vt_sink_get sink message tos rcpts "$rcpt")"
    for c in $(vt_sink_get sink message conn rcpts "$rcpt"); do
        vt_assert_eq "handshake TOS of $rcpt's connection $c" "$tos" "$(vt_sink_get sink connect tos conn "$c")"
    done
done <<EOF
a@one.test 32 vip1: tos_by_binding
b@ef.test 32 vip1 to ef.test: the name before the domain
c@two.test 72 vip2: Binding
d@domain.test 184 vip2 to domain.test: Domain before Binding
e@pair.test 160 vip2 to pair.test: Binding:Domain
EOF
vt_assert_file_contains "tos_marker's line (ec_mod_debug at DINFO)" "$VT_DAEMON_LOG" \
    "info [tos_marker] tos_marker: binding vip2 domain pair.test: tos 160 mark 0"

vt_log "conn_logger: two instances, each with its options per binding"
vip1=$(vt_sink_count sink connect peer 127.0.0.2)
vip2=$(vt_sink_count sink connect peer 127.0.0.3)
vt_assert_eq "instance a's lines for vip1" "$vip1" "$(grep -c 'info \[conn_logger:a\] a: binding vip1 (group pool) domain ' "$VT_DAEMON_LOG")"
vt_assert_eq "instance a's lines for vip2 (log_connections false there)" 0 \
    "$(grep -c 'conn_logger:a\] a: binding vip2' "$VT_DAEMON_LOG")"
vt_assert_eq "instance b's lines for vip1 (its prefix for vip1)" "$vip1" \
    "$(grep -c 'info \[conn_logger:b\] b-vip1: binding vip1 (group pool) domain ' "$VT_DAEMON_LOG")"
vt_assert_eq "instance b's lines for vip2" "$vip2" \
    "$(grep -c 'info \[conn_logger:b\] b: binding vip2 (group pool) domain ' "$VT_DAEMON_LOG")"
vt_assert_match "a line names the domain, the socket and the destination" \
    "*info \\[conn_logger:b\\] b: binding vip2 (group pool) domain pair.test fd [0-9]* to 127.0.0.1:$SINK" \
    "$(grep 'conn_logger:b\] b: binding vip2 (group pool) domain pair.test' "$VT_DAEMON_LOG" | head -n 1)"

vt_log "circuit_breaker: broken.test fails on every attempt; after 2 attempts its circuit opens"
dl_send sender@src.test x@broken.test "broken"
vt_wait_until 30 grep -q 'warning \[circuit_breaker\] circuit_breaker: broken.test open: ' "$VT_DAEMON_LOG" ||
    vt_fail "the circuit of broken.test did not open"
vt_assert_match "the breaker's line" \
    "*warning \\[circuit_breaker\\] circuit_breaker: broken.test open: * of * attempts failed, 0 delivered (threshold 50% after 2 attempts): connection vetoed" \
    "$(grep 'circuit_breaker: broken.test open' "$VT_DAEMON_LOG" | head -n 1)"
vt_wait_until 10 grep -q 'vetoed by module "circuit_breaker"' "$VT_DAEMON_LOG" ||
    vt_fail "the core did not name circuit_breaker for the veto"
attempts=$(vt_sink_count sink reject rcpt x@broken.test)
[ "$attempts" -ge 2 ] || vt_fail "broken.test saw $attempts attempts before the circuit opened, expected 2 or more"
sleep 2
vt_assert_eq "attempts at the sink once the circuit is open" "$attempts" "$(vt_sink_count sink reject rcpt x@broken.test)"
vt_assert_eq "healthy domains vetoed by the breaker" 0 \
    "$(grep 'circuit_breaker' "$VT_DAEMON_LOG" | grep -c 'open:.*\(one\|two\|ef\|pair\|domain\).test')"

vt_log "a reload changing conn_logger a's prefix: a new generation logs with it, the old one ends (DESTROY)"
vip1=$(vt_sink_count sink connect peer 127.0.0.2) # broken.test's attempts came from vip1 too
mm_config a2
vt_signal_daemon HUP
vt_wait_until 20 grep -q 'reload: applied' "$VT_DAEMON_LOG" || vt_fail "the reload was not applied"
vt_assert_file_contains "the old generation's DESTROY" "$VT_DAEMON_LOG" \
    "notice [conn_logger:a] conn_logger: logged $vip1 connections"
dl_send sender@src.test f@one.test "after the reload"
vt_sink_wait sink 1 30 message rcpts f@one.test >/dev/null || vt_fail "the message after the reload did not arrive"
vt_wait_until 10 grep -q 'info \[conn_logger:a\] a2: binding vip1 (group pool) domain one.test' "$VT_DAEMON_LOG" ||
    vt_fail "no line with the new prefix"
vt_assert_eq "instance b kept its prefix" "$((vip1 + 1))" \
    "$(grep -c 'info \[conn_logger:b\] b-vip1: binding vip1' "$VT_DAEMON_LOG")"

vt_stop_daemon || vt_fail "the daemon exited with status $?"
vt_assert_file_contains "instance b's DESTROY at shutdown" "$VT_DAEMON_LOG" \
    "notice [conn_logger:b] conn_logger: logged"
vt_assert_file_contains "tos_marker's DESTROY at shutdown" "$VT_DAEMON_LOG" \
    "notice [tos_marker] tos_marker: marked"
