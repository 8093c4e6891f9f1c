#!/bin/sh
# deliver_binding_wait.sh: mail never leaves from an address the configuration did not give it: a suspended binding's pinned mail waits, its group's mail moves to another member, a binding removed before a restart keeps its mail waiting (absent) until it is back; -t, the log and vipmtactl say so.
. "$VIPMTA_TOP_SRCDIR/t/integration/ctl_lib.sh"

dl_init
BIN=$VIPMTA_TOP_BUILDDIR/core/vipmta
SINK=$(vt_free_port)
vt_start_sink sink "$SINK"
# wb_config VIPX_ADDRESS [WITHOUT_VIPX]: vip1 127.0.0.2; vipx at VIPX_ADDRESS
# (192.0.2.7 is on no host here); group pool = [vipx, vip1] is the default;
# pinned.test is pinned to vipx by a rule
wb_config() {
    if [ -n "${2:-}" ]; then
        dl_config "{\"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}},
          \"binding_groups\": {\"pool\": [\"vip1\"]}, \"default_binding_group\": \"pool\",
          \"routes\": {\"*\": \"127.0.0.1:$SINK\"}, \"domains\": {\"*\": {\"retry_schedule\": [1]}}}"
        return
    fi
    dl_config "{\"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}, \"vipx\": {\"address\": \"$1\"}},
      \"binding_groups\": {\"pool\": [\"vipx\", \"vip1\"]}, \"default_binding_group\": \"pool\",
      \"binding_rules\": [{\"recipient_domain\": \"pinned.test\", \"binding\": \"vipx\"}],
      \"routes\": {\"*\": \"127.0.0.1:$SINK\"}, \"domains\": {\"*\": {\"retry_schedule\": [1]}}}"
}
wb_config 192.0.2.7

vt_log "vipmta -t says the binding will be suspended and where its mail goes"
out=$("$BIN" -t -c "$DL_CONF" 2>&1) || vt_fail "-t refused the config: $out"
vt_assert_match "-t warning" "warning: binding \"vipx\" (slot 2) suspended: source address 192.0.2.7 is not configured on this host; no mail leaves from it: mail pinned to it (by a binding rule, X-Binding or a restart) waits for it; mail chosen from its groups moves to vip1 (group pool)*" "$out"
vt_assert_eq "-t last line" ok "$(printf '%s\n' "$out" | tail -1)"

vt_start_daemon "$DL_CONF"
vt_assert_file_contains "the start-up warning" "$VT_DAEMON_LOG" \
    "binding \"vipx\" (slot 2) suspended: source address 192.0.2.7 is not configured on this host"

vt_log "mail pinned to the suspended binding waits; the group's mail leaves from vip1"
dl_send sender@src.test held@pinned.test "pinned"
dl_send sender@src.test a@pool.test "pool" 4
vt_sink_wait sink 4 30 message >/dev/null || vt_fail "the pool's mail did not arrive"
sleep 2
vt_assert_eq "messages at the sink (the pinned one waits)" 4 "$(vt_sink_count sink message)"
vt_assert_eq "pool messages from vip1" 4 "$(vt_sink_count sink message peer 127.0.0.2)"
vt_assert_eq "connections from any other address" 0 \
    "$(($(vt_sink_count sink connect) - $(vt_sink_count sink connect peer 127.0.0.2)))"
vt_assert_eq "delivery attempts for the pinned message" 0 "$(dl_count rcpt held@pinned.test)"
ctl_ok --json bindings
vt_assert_eq "vipmtactl: vipx's state" suspended "$(ctl_py '[b["state"] for b in r["bindings"] if b["name"] == "vipx"][0]')"
vt_assert_eq "vipmtactl: mail waiting on vipx" 1 "$(ctl_py '[b["queued"] for b in r["bindings"] if b["name"] == "vipx"][0]')"
ctl_ok bindings
vt_assert_eq "vipmtactl table: vipx's state" suspended "$(ctl_table_cell vipx STATE)"

vt_log "restarted without vipx: its mail still waits (absent binding), never leaves from another address"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
wb_config - without-vipx
vt_start_daemon "$DL_CONF"
vt_wait_until 10 grep -q "spool recovered" "$VT_DAEMON_LOG" || vt_fail "no recovery line"
vt_assert_file_contains "the absent binding's warning" "$VT_DAEMON_LOG" \
    "binding \"vipx\" (slot 2) is not in the configuration, but 1 queued recipient(s) were assigned to it: no mail leaves from it"
sleep 2
vt_assert_eq "messages at the sink" 4 "$(vt_sink_count sink message)"
ctl_ok --json bindings
vt_assert_eq "vipmtactl: vipx is absent" absent "$(ctl_py '[b["state"] for b in r["bindings"] if b["name"] == "vipx"][0]')"
vt_assert_eq "vipmtactl: its mail" 1 "$(ctl_py '[b["queued"] for b in r["bindings"] if b["name"] == "vipx"][0]')"

vt_log "vipx back (a reload, at an address this host has): the waiting mail leaves from it"
wb_config 127.0.0.3
vt_signal_daemon HUP
vt_wait_until 20 grep -q "reload: applied" "$VT_DAEMON_LOG" || vt_fail "the reload was not applied: $(grep reload "$VT_DAEMON_LOG")"
vt_sink_wait sink 5 30 message >/dev/null || vt_fail "the waiting message was not delivered after vipx came back"
vt_assert_eq "the pinned message left from vipx's address" 1 \
    "$(vt_sink_count sink message rcpts held@pinned.test peer 127.0.0.3)"
vt_assert_eq "connections from addresses no binding has" 0 \
    "$(($(vt_sink_count sink connect) - $(vt_sink_count sink connect peer 127.0.0.2) - $(vt_sink_count sink connect peer 127.0.0.3)))"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
