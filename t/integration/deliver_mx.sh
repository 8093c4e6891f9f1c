#!/bin/sh
# deliver_mx.sh: MX routing through dnsmasq on a loopback port: MX host, implicit MX (A only), NXDOMAIN bounce.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

vt_require dnsmasq
dl_init
SINK=$(vt_free_port)
DNS=$(vt_free_port)
vt_start_sink sink "$SINK"
vt_start_dns "$DNS" \
    --mx-host=example.test,mx1.example.test,10 \
    --mx-host=sender.test,mx1.example.test,10 \
    --host-record=mx1.example.test,127.0.0.1 \
    --host-record=nomx.test,127.0.0.1
dl_config "{
  \"dns\": {\"servers\": [\"127.0.0.1:$DNS\"], \"mx_port\": $SINK, \"timeout_ms\": 500, \"tries\": 2},
  \"domains\": {\"*\": {\"retry_schedule\": [1]}}
}"
vt_start_daemon "$DL_CONF"

vt_log "MX example.test -> mx1.example.test -> 127.0.0.1"
dl_send alice@sender.test user@example.test "via MX"
vt_sink_wait sink 1 20 message rcpts user@example.test >/dev/null || vt_fail "not delivered via MX"
dl_wait 1 10 outcome delivered rcpt user@example.test mx mx1.example.test destination "127.0.0.1:$SINK" ||
    vt_fail "no delivered line naming mx1.example.test"

vt_log "no MX: the domain's own address"
dl_send alice@sender.test user@nomx.test "implicit MX"
vt_sink_wait sink 1 20 message rcpts user@nomx.test >/dev/null || vt_fail "not delivered to the A record"
dl_wait 1 10 outcome delivered rcpt user@nomx.test mx nomx.test || vt_fail "no delivered line for nomx.test"

vt_log "NXDOMAIN: bounced, the DSN goes back through the sender's MX"
dl_send alice@sender.test user@nx.test "to nowhere"
dl_wait 1 20 outcome bounced rcpt user@nx.test || vt_fail "no bounced line for nx.test"
vt_assert_match "bounce reason" "550 5.1.2 domain nx.test does not exist (NXDOMAIN)" \
    "$(dl_get reply outcome bounced rcpt user@nx.test)"
vt_sink_wait sink 1 20 message mail_from '' rcpts alice@sender.test >/dev/null ||
    vt_fail "no DSN to alice@sender.test"
vt_assert_eq "DSNs" 1 "$(vt_sink_count sink message mail_from '')"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
