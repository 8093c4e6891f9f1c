#!/bin/sh
# modules_momentum_hooks.sh: a module written against Momentum's documented API (t/modules/momentum/hook_recorder.c) records every call of the outbound connection hooks and the binding validation hooks in the daemon: veto_host_connection skips a route's first host (its sink sees nothing, the mail arrives at the second), validate_set_binding moves one domain's mail to vip2 (it arrives from 127.0.0.3, post_validate_set_binding fires for it alone), inc/dec_outbound_connections balance and match the sink's connections, post_initiate_connection_smtp, log_client_connection_success/failure and inc_outbound_conn_throttle fire once per connection attempt: a socket then a failure for a closed port, a negative code and a failure for a binding with no address of the host's family.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/t/modules/momentum
[ -e "$MODDIR/hook_recorder.la" ] || vt_skip "the Momentum test modules are not built in $MODDIR (make check builds them)"
SINK=$(vt_free_port)
SKIPPED=$(vt_free_port)
CLOSED=$(vt_free_port)
HOOKS=$VT_DIR/hooks.log
# two.test's route: 127.0.0.7 first (the module skips it), then the sink
vt_start_sink skipped "127.0.0.7:$SKIPPED"
vt_start_sink sink "$SINK"

dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}, \"vip2\": {\"address\": \"127.0.0.3\"},
                 \"v6only\": {\"address6\": \"::1\"}},
  \"binding_rules\": [{\"recipient_domain\": \"nobind.test\", \"binding\": \"v6only\"}],
  \"binding_groups\": {\"main\": [\"vip1\"]},
  \"default_binding_group\": \"main\",
  \"routes\": {\"two.test\": [\"127.0.0.7:$SKIPPED\", \"127.0.0.1:$SINK\"],
               \"closed.test\": \"127.0.0.1:$CLOSED\", \"*\": \"127.0.0.1:$SINK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [3600], \"veto_retry\": 3600}},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [
    {\"name\": \"hook_recorder\", \"debug_level\": \"notice\",
     \"options\": {\"file\": \"$HOOKS\", \"skip_host\": \"127.0.0.7\",
                   \"rebind_domain\": \"moved.test\", \"rebind_to\": \"vip2\"}}
  ]
}"
VIPMTA=$VIPMTA_TOP_BUILDDIR/core/vipmta
out=$("$VIPMTA" -t -c "$DL_CONF" 2>&1) || vt_fail "vipmta -t: $out"
vt_assert_eq "vipmta -t" ok "$out"
vt_start_daemon "$DL_CONF"
vt_assert_file_contains "hook_recorder's ready line" "$VT_DAEMON_LOG" "notice [hook_recorder] hook_recorder: ready"

vt_log "one message each to two.test, moved.test, plain.test, closed.test and nobind.test"
for rcpt in t@two.test m@moved.test a@plain.test c@closed.test n@nobind.test; do
    dl_send sender@src.test "$rcpt" "to $rcpt"
done

# hooks REGEX: how many recorded lines match the extended regular expression
hooks() {
    grep -cE "$1" "$HOOKS" 2>/dev/null || true
}

vt_log "veto_host_connection: two.test's first host is skipped, the mail arrives at the second"
vt_sink_wait sink 1 30 message rcpts t@two.test >/dev/null || vt_fail "t@two.test did not arrive"
vt_assert_eq "peer of t@two.test (vip1)" 127.0.0.2 "$(vt_sink_get sink message peer rcpts t@two.test)"
vt_assert_eq "connections at the skipped host's sink" 0 "$(vt_sink_count skipped connect)"
vt_assert_eq "vetoes of 127.0.0.7 (two.test, vip1)" 1 \
    "$(hooks "^veto_host_connection domain=two\.test binding=1 host=127\.0\.0\.7 addr=127\.0\.0\.7:$SKIPPED .* veto=1$")"
vt_assert_eq "two.test's second host asked and let go" 1 \
    "$(hooks "^veto_host_connection domain=two\.test binding=1 host=127\.0\.0\.1 addr=127\.0\.0\.1:$SINK .* veto=0$")"
vt_assert_eq "every veto is of 127.0.0.7" "$(hooks '^veto_host_connection .* veto=1$')" \
    "$(hooks '^veto_host_connection .* host=127\.0\.0\.7 .* veto=1$')"

vt_log "validate_set_binding: moved.test's mail moves to vip2 and arrives from 127.0.0.3"
vt_sink_wait sink 1 30 message rcpts m@moved.test >/dev/null || vt_fail "m@moved.test did not arrive"
vt_assert_eq "peer of m@moved.test (vip2)" 127.0.0.3 "$(vt_sink_get sink message peer rcpts m@moved.test)"
vt_assert_eq "validate_set_binding calls (one per message)" 5 "$(hooks '^validate_set_binding ')"
vt_assert_eq "moved.test moved from vip1 to vip2" 1 "$(hooks '^validate_set_binding domain=moved\.test binding=1 moved_to=2$')"
vt_assert_eq "the other messages stay" 3 "$(hooks '^validate_set_binding domain=(two|plain|closed)\.test binding=1 moved_to=-1$')"
vt_assert_eq "nobind.test stays on v6only" 1 "$(hooks '^validate_set_binding domain=nobind\.test binding=3 moved_to=-1$')"
vt_assert_eq "post_validate_set_binding calls (moved.test only)" 1 "$(hooks '^post_validate_set_binding ')"
vt_assert_eq "post_validate_set_binding saw moved.test on vip2" 1 "$(hooks '^post_validate_set_binding domain=moved\.test binding=2$')"
vt_assert_eq "delivered lines of m@moved.test from vip2" 1 "$(dl_count outcome delivered rcpt m@moved.test binding vip2)"
vt_assert_eq "moved.test's connections from vip2" 1 "$(hooks '^inc_outbound_connections domain=moved\.test binding=2 ')"

vt_log "a closed port: connect() was in progress (a socket), then log_client_connection_failure"
vt_sink_wait sink 1 30 message rcpts a@plain.test >/dev/null || vt_fail "a@plain.test did not arrive"
dl_wait 1 30 outcome deferred rcpt c@closed.test || vt_fail "c@closed.test was not deferred"
vt_assert_eq "closed.test's failures (CONN_ERROR_CONNECT)" 1 \
    "$(hooks "^log_client_connection_failure domain=closed\.test binding=1 addr=127\.0\.0\.1:$CLOSED err=0x2000$")"
vt_assert_eq "closed.test's initiations: a socket, connect() in progress" 1 \
    "$(hooks '^post_initiate_connection_smtp domain=closed\.test binding=1 fd=[0-9]+$')"
vt_assert_eq "closed.test's successes" 0 "$(hooks '^log_client_connection_success domain=closed\.test ')"
vt_assert_eq "closed.test's connections up" 0 "$(hooks '^inc_outbound_connections domain=closed\.test ')"

vt_log "a binding with no IPv4 address: the attempt fails before connect(), a negative code"
dl_wait 1 30 outcome deferred rcpt n@nobind.test || vt_fail "n@nobind.test was not deferred"
vt_assert_eq "nobind.test's initiations: -CONN_ERROR_BIND" 1 \
    "$(hooks '^post_initiate_connection_smtp domain=nobind\.test binding=3 fd=-4096$')"
vt_assert_eq "nobind.test's failures (CONN_ERROR_BIND)" 1 \
    "$(hooks "^log_client_connection_failure domain=nobind\.test binding=3 addr=127\.0\.0\.1:$SINK err=0x1000$")"
vt_assert_eq "nobind.test's connections up" 0 "$(hooks '^inc_outbound_connections domain=nobind\.test ')"

vt_log "the queue drains: every connection that came up went down"
n=0
while [ "$n" -lt 300 ]; do
    [ "$(hooks '^inc_outbound_connections ')" -eq "$(hooks '^dec_outbound_connections ')" ] && break
    sleep 0.1
    n=$((n + 1))
done
conns=$(vt_sink_count sink connect)
vt_log "connections at the sink: $conns"
[ "$conns" -ge 3 ] || vt_fail "fewer connections at the sink than domains delivered: $conns"
vt_assert_eq "inc_outbound_connections = the sink's connections" "$conns" "$(hooks '^inc_outbound_connections ')"
vt_assert_eq "dec_outbound_connections = inc_outbound_connections" "$conns" "$(hooks '^dec_outbound_connections ')"
vt_assert_eq "inc_outbound_connections with a socket, to the sink" "$conns" \
    "$(hooks "^inc_outbound_connections domain=[a-z.]+ binding=[12] host=127\.0\.0\.1 addr=127\.0\.0\.1:$SINK fd=[0-9]+$")"
vt_assert_eq "dec_outbound_connections with a socket, to the sink" "$conns" \
    "$(hooks "^dec_outbound_connections domain=[a-z.]+ binding=[12] host=127\.0\.0\.1 addr=127\.0\.0\.1:$SINK fd=[0-9]+$")"
vt_assert_eq "log_client_connection_success = the sink's connections" "$conns" \
    "$(hooks "^log_client_connection_success domain=[a-z.]+ binding=[12] addr=127\.0\.0\.1:$SINK$")"
vt_assert_eq "log_client_connection_failure: closed.test's and nobind.test's only" 2 "$(hooks '^log_client_connection_failure ')"
vt_assert_eq "post_initiate_connection_smtp with a socket = the sink's connections + closed.test's" "$((conns + 1))" \
    "$(hooks '^post_initiate_connection_smtp .* fd=[0-9]+$')"
vt_assert_eq "post_initiate_connection_smtp with a negative code: nobind.test's only" 1 \
    "$(hooks '^post_initiate_connection_smtp .* fd=-[0-9]+$')"
initiated=$(hooks '^post_initiate_connection_smtp ')
vt_assert_eq "inc_outbound_conn_throttle once per initiated connection" "$initiated" "$(hooks '^inc_outbound_conn_throttle ')"
for d in two moved plain closed nobind; do
    vt_assert_eq "$d.test: inc_outbound_conn_throttle = post_initiate_connection_smtp" \
        "$(hooks "^post_initiate_connection_smtp domain=$d\.test ")" "$(hooks "^inc_outbound_conn_throttle domain=$d\.test ")"
done
vt_assert_eq "moved.test's throttle counted on vip2" 1 "$(hooks '^inc_outbound_conn_throttle domain=moved\.test binding=2$')"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
