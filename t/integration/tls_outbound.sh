#!/bin/sh
# tls_outbound.sh: outbound STARTTLS policies against TLS sinks (trusted, untrusted, none): verify with SNI, required, opportunistic, resumption, smarthost AUTH, metrics.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"
. "$VIPMTA_TOP_SRCDIR/t/lib/tls.sh"

vt_require dnsmasq openssl
dl_init
P=$(vt_free_port)
DNS=$(vt_free_port)
METRICS=$(vt_free_port)
vt_tls_ca ca
vt_tls_cert ca good "DNS:mx.good.test"
vt_tls_cert self untrusted "DNS:mx.untrusted.test"
vt_tls_cert ca smart "DNS:smart.relay.test"
# one port, four loopback addresses: the trusted sink, the untrusted one, one without TLS, a smarthost
vt_start_sink good 127.0.0.10:"$P" --tls-cert "$VT_DIR/good.crt" --tls-key "$VT_DIR/good.key"
vt_start_sink untrusted 127.0.0.11:"$P" --tls-cert "$VT_DIR/untrusted.crt" --tls-key "$VT_DIR/untrusted.key"
vt_start_sink plain 127.0.0.12:"$P"
vt_start_sink smart 127.0.0.13:"$P" --tls-cert "$VT_DIR/smart.crt" --tls-key "$VT_DIR/smart.key" \
    --auth "relayuser:relay secret"
vt_start_dns "$DNS" \
    --mx-host=verify.test,mx.good.test,10 --mx-host=resume.test,mx.good.test,10 \
    --mx-host=bad-verify.test,mx.untrusted.test,10 --mx-host=bad-opp.test,mx.untrusted.test,10 \
    --mx-host=plain-required.test,mx.plain.test,10 --mx-host=plain-opp.test,mx.plain.test,10 \
    --mx-host=none.test,mx.good.test,10 \
    --host-record=mx.good.test,127.0.0.10 --host-record=mx.untrusted.test,127.0.0.11 \
    --host-record=mx.plain.test,127.0.0.12 --host-record=smart.relay.test,127.0.0.13
dl_config "{
  \"dns\": {\"servers\": [\"127.0.0.1:$DNS\"], \"mx_port\": $P, \"timeout_ms\": 500, \"tries\": 2},
  \"tls\": {\"ca_file\": \"ca.crt\"},
  \"module_path\": [\"$VIPMTA_TOP_BUILDDIR/modules\"],
  \"modules\": [{\"name\": \"connlog\", \"options\": {\"file\": \"$VT_DIR/connlog.jsonl\", \"tls\": true}}],
  \"metrics\": {\"address\": \"127.0.0.1\", \"port\": $METRICS},
  \"domains\": {\"*\": {\"retry_schedule\": [600]},
                \"verify.test\": {\"tls\": \"verify\"},
                \"resume.test\": {\"tls\": \"verify\", \"messages_per_connection\": 1},
                \"bad-verify.test\": {\"tls\": \"verify\"},
                \"bad-opp.test\": {\"tls\": \"opportunistic\"},
                \"plain-required.test\": {\"tls\": \"required\"},
                \"none.test\": {\"tls\": \"none\"}},
  \"routes\": {\"smart.test\": {\"hosts\": \"smart.relay.test:$P\", \"tls\": \"verify\",
                                \"auth\": {\"username\": \"relayuser\", \"password\": \"relay secret\"}}}
}"
vt_start_daemon "$DL_CONF"

vt_log "verify: chain and MX name verified, SNI sent"
dl_send a@src.test u@verify.test "verify ok"
vt_sink_wait good 1 20 message rcpts u@verify.test >/dev/null || vt_fail "verify.test not delivered"
vt_assert_match "TLS version seen by the sink" "TLSv1.[23]" "$(vt_sink_get good message tls rcpts u@verify.test)"
vt_assert_eq "SNI seen by the sink" mx.good.test "$(vt_sink_get good message sni rcpts u@verify.test)"
dl_wait 1 10 outcome delivered rcpt u@verify.test || vt_fail "no delivered line for verify.test"
vt_assert_match "delivery log tls" '*"version": "TLSv1.*"verified": true*' \
    "$(dl_get tls outcome delivered rcpt u@verify.test)"

vt_log "verify against an untrusted certificate: deferred with the reason, never sent in clear"
dl_send a@src.test u@bad-verify.test "verify fails"
dl_wait 1 20 outcome deferred rcpt u@bad-verify.test || vt_fail "bad-verify.test not deferred"
vt_assert_match "verify failure reason" "*not verified: self-signed certificate*tls \"verify\"*" \
    "$(dl_get reply outcome deferred rcpt u@bad-verify.test)"
vt_assert_eq "messages the untrusted sink got for bad-verify.test" 0 \
    "$(vt_sink_count untrusted message rcpts u@bad-verify.test)"

vt_log "opportunistic to the untrusted certificate: delivered encrypted, not verified"
dl_send a@src.test u@bad-opp.test "opportunistic"
vt_sink_wait untrusted 1 20 message rcpts u@bad-opp.test >/dev/null || vt_fail "bad-opp.test not delivered"
vt_assert_match "TLS to the untrusted sink" "TLSv1.[23]" "$(vt_sink_get untrusted message tls rcpts u@bad-opp.test)"
dl_wait 1 10 outcome delivered rcpt u@bad-opp.test || vt_fail "no delivered line for bad-opp.test"
vt_assert_match "delivery log: not verified" '*"verified": false*' \
    "$(dl_get tls outcome delivered rcpt u@bad-opp.test)"

vt_log "required to a server without STARTTLS: deferred, nothing sent"
dl_send a@src.test u@plain-required.test "required"
dl_wait 1 20 outcome deferred rcpt u@plain-required.test || vt_fail "plain-required.test not deferred"
vt_assert_match "required failure reason" "*TLS is required (domain plain-required.test: tls \"required\") but 127.0.0.12:$P does not offer STARTTLS*" \
    "$(dl_get reply outcome deferred rcpt u@plain-required.test)"
vt_assert_eq "messages the plain sink got for plain-required.test" 0 \
    "$(vt_sink_count plain message rcpts u@plain-required.test)"

vt_log "opportunistic to a server without STARTTLS: clear text"
dl_send a@src.test u@plain-opp.test "clear"
vt_sink_wait plain 1 20 message rcpts u@plain-opp.test >/dev/null || vt_fail "plain-opp.test not delivered"
dl_wait 1 10 outcome delivered rcpt u@plain-opp.test || vt_fail "no delivered line for plain-opp.test"
vt_assert_eq "delivery log tls in clear" false "$(dl_get tls outcome delivered rcpt u@plain-opp.test)"

vt_log "tls none: no STARTTLS although offered"
dl_send a@src.test u@none.test "none"
vt_sink_wait good 1 20 message rcpts u@none.test >/dev/null || vt_fail "none.test not delivered"
vt_assert_eq "sink saw clear text for none.test" null "$(vt_sink_get good message tls rcpts u@none.test)"

vt_log "session resumption: one connection per message, the later ones resume"
dl_send a@src.test u@resume.test "resume" 3
vt_sink_wait good 3 30 message rcpts u@resume.test >/dev/null || vt_fail "resume.test not delivered"
dl_wait 3 10 outcome delivered rcpt u@resume.test || vt_fail "no delivered lines for resume.test"
vt_assert_match "a resumed session in the delivery log" '*"resumed": true*' \
    "$(dl_get tls outcome delivered rcpt u@resume.test)"

vt_log "smarthost route with AUTH over verified TLS"
dl_send a@src.test u@smart.test "smarthost"
vt_sink_wait smart 1 20 message rcpts u@smart.test >/dev/null || vt_fail "smart.test not delivered"
vt_assert_eq "user the smarthost saw" relayuser "$(vt_sink_get smart message auth_user rcpts u@smart.test)"
vt_assert_eq "SNI the smarthost saw" smart.relay.test "$(vt_sink_get smart message sni rcpts u@smart.test)"

vt_log "connlog: one tls line per connection, from what the core exposes to modules"
vt_assert_file_contains "connlog tls line (verified)" "$VT_DIR/connlog.jsonl" \
    '"event":"tls","domain":"verify.test","binding":"default","slot":0'
grep '"domain":"verify.test"' "$VT_DIR/connlog.jsonl" | grep -q '"peer_name":"mx.good.test","policy":"verify","tls":true,"version":"TLSv1.3"' ||
    vt_fail "connlog line for verify.test: $(grep verify.test "$VT_DIR/connlog.jsonl")"
grep '"domain":"bad-opp.test"' "$VT_DIR/connlog.jsonl" | grep -q '"verified":false,"resumed":false,"verify_error":"self-signed certificate"' ||
    vt_fail "connlog line for bad-opp.test: $(grep bad-opp.test "$VT_DIR/connlog.jsonl")"
grep '"domain":"plain-opp.test"' "$VT_DIR/connlog.jsonl" | grep -q '"event":"tls".*"tls":false' ||
    vt_fail "connlog line for plain-opp.test: $(grep plain-opp.test "$VT_DIR/connlog.jsonl")"

vt_log "metrics: connections by TLS version and verification"
"$VT_PYTHON" - "$METRICS" >"$VT_DIR/metrics.txt" <<'PY' || vt_fail "metrics scrape failed"
import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode())
PY
grep -q 'vipmta_tls_connections_total{direction="outbound",tls="true",version="TLSv1.3",.*verified="true"}' "$VT_DIR/metrics.txt" ||
    vt_fail "no verified outbound TLS connections in the metrics: $(grep tls "$VT_DIR/metrics.txt")"
grep -q 'vipmta_tls_connections_total{direction="outbound",tls="false"' "$VT_DIR/metrics.txt" ||
    vt_fail "no clear-text outbound connections in the metrics"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
exit 0
