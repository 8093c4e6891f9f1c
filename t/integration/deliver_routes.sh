#!/bin/sh
# deliver_routes.sh: static route hosts are tried in order: the first (nothing listening) fails, the second delivers.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
SINK=$(vt_free_port)
DEAD=$(vt_free_port)
vt_start_sink sink "$SINK"
dl_config "{
  \"routes\": {
    \"routed.test\": [\"127.0.0.1:$DEAD\", \"127.0.0.1:$SINK\"],
    \"*\": \"127.0.0.1:$DEAD\"
  },
  \"domains\": {\"*\": {\"retry_schedule\": [600]}}
}"
vt_start_daemon "$DL_CONF"

vt_log "the first host refuses: delivered through the second"
dl_send sender@src.test user@routed.test "two routes"
vt_sink_wait sink 1 20 message rcpts user@routed.test >/dev/null || vt_fail "not delivered through the second route host"
dl_wait 1 10 outcome delivered rcpt user@routed.test destination "127.0.0.1:$SINK" ||
    vt_fail "no delivered line for the second host"
vt_assert_eq "connect_failed lines for the first host" 1 \
    "$(dl_count outcome connect_failed destination "127.0.0.1:$DEAD" domain routed.test id null)"

vt_log "a domain whose only host is down: deferred, stays queued"
dl_send sender@src.test user@down.test "one dead route"
dl_wait 1 20 outcome deferred rcpt user@down.test || vt_fail "no deferred line for down.test"
reply=$(dl_get reply outcome deferred rcpt user@down.test)
vt_assert_match "deferral reason" "451 4.4.1 connect to 127.0.0.1:$DEAD *Connection refused*" "$reply"
[ -n "$(dl_spool_ids)" ] || vt_fail "the deferred message left the spool"
vt_assert_eq "messages at the sink" 1 "$(vt_sink_count sink message)"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
