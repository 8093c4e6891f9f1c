#!/bin/sh
# reload_apply.sh: a good reload applies live: a new binding (a new slot, existing slots kept), a route to a second sink, a domain limit (messages_per_connection), and a newly enabled module (connlog starts writing); sessions open across the reload keep working.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
[ -e "$MODDIR/connlog.la" ] || vt_skip "the connlog module is not built in $MODDIR"
SINK1=$(vt_free_port)
SINK2=$(vt_free_port)
vt_start_sink sink1 "$SINK1"
vt_start_sink sink2 "$SINK2"
CONNLOG=$VT_DIR/connections.jsonl

# before: one binding, everything to sink1, connlog listed but disabled
dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}},
  \"binding_rules\": [{\"recipient_domain\": \"*\", \"binding\": \"vip1\"}],
  \"routes\": {\"*\": \"127.0.0.1:$SINK1\"},
  \"domains\": {\"*\": {\"retry_schedule\": [1]}},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"connlog\", \"enabled\": false, \"options\": {\"file\": \"$CONNLOG\"}}]
}"
vt_start_daemon "$DL_CONF"

vt_log "before the reload: mail goes to sink1 from vip1, no connlog file"
dl_send sender@src.test user@moved.test "before" 3
vt_sink_wait sink1 3 30 message >/dev/null || vt_fail "the first messages did not reach sink1"
vt_assert_eq "messages from vip1 at sink1" 3 "$(vt_sink_count sink1 message peer 127.0.0.2)"
[ ! -e "$CONNLOG" ] || vt_fail "connlog wrote $CONNLOG while disabled"

# a session opened before the reload and used after it
exec 3>"$VT_DIR/open-session.in"
"$VT_PYTHON" - "$DL_PORT" "$VT_DIR/open-session.in" "$VT_DIR/open-session.out" <<'EOF' &
import smtplib, sys, time, os
port, go, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
s.ehlo()
s.mail("sender@src.test")
s.rcpt("open@moved.test")
open(out + ".ready", "w").write("ready\n")
end = time.time() + 30
while time.time() < end and os.path.getsize(go) == 0:
    time.sleep(0.05)
s.data(b"From: sender@src.test\r\nTo: open@moved.test\r\nSubject: open session\r\n\r\nacross the reload\r\n")
s.quit()
open(out, "w").write("ok\n")
EOF
OPEN_PID=$!
vt_wait_until 10 test -s "$VT_DIR/open-session.out.ready" || vt_fail "the open session did not get through RCPT"

vt_log "reload: binding vip2 added, moved.test routed to sink2 from vip2, one message per connection, connlog enabled"
dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}, \"vip2\": {\"address\": \"127.0.0.3\"}},
  \"binding_rules\": [{\"recipient_domain\": \"moved.test\", \"binding\": \"vip2\"},
                      {\"recipient_domain\": \"*\", \"binding\": \"vip1\"}],
  \"routes\": {\"moved.test\": \"127.0.0.1:$SINK2\", \"*\": \"127.0.0.1:$SINK1\"},
  \"domains\": {\"*\": {\"retry_schedule\": [1], \"messages_per_connection\": 1}},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"connlog\", \"enabled\": true, \"options\": {\"file\": \"$CONNLOG\"}}]
}"
vt_signal_daemon HUP
vt_wait_until 20 grep -q "reload: applied" "$VT_DAEMON_LOG" || vt_fail "the reload was not applied: $(grep 'reload' "$VT_DAEMON_LOG")"
vt_assert_file_contains "the summary line" "$VT_DAEMON_LOG" \
    "reload: applied $DL_CONF (bindings 2->3, modules +connlog, changed: bindings, binding_rules, routes, domains, modules)"
vt_assert_file_contains "connlog's start line" "$VT_DAEMON_LOG" "info [connlog] logging connections to $CONNLOG"
[ -f "$CONNLOG" ] || vt_fail "connlog did not create $CONNLOG on reload"

vt_log "the session opened before the reload finishes on its config (binding vip1), delivered under the new one (routed to sink2)"
echo go >&3
exec 3>&-
wait "$OPEN_PID" || vt_fail "the session open across the reload failed"
vt_sink_wait sink2 1 30 message subject "open session" >/dev/null ||
    vt_fail "the open session's message did not reach sink2"
vt_assert_eq "the open session's message left from vip1 (the binding rules it started with)" 1 \
    "$(vt_sink_count sink2 message peer 127.0.0.2 subject "open session")"

vt_log "after the reload: moved.test goes to sink2 from vip2 (slot 2), one connection per message"
dl_send sender@src.test user@moved.test "after" 3
dl_send sender@src.test user@other.test "other"
vt_sink_wait sink2 4 30 message >/dev/null || vt_fail "moved.test's messages did not reach sink2: $(vt_sink_count sink2 message)"
vt_sink_wait sink1 4 30 message >/dev/null || vt_fail "other.test's message did not reach sink1"
sleep 1
vt_assert_eq "messages at sink2" 4 "$(vt_sink_count sink2 message)"
vt_assert_eq "messages from vip2 at sink2" 3 "$(vt_sink_count sink2 message peer 127.0.0.3)"
vt_assert_eq "messages at sink1 (3 before, other.test after)" 4 "$(vt_sink_count sink1 message)"
vt_assert_eq "other.test from vip1 (its slot kept)" 1 "$(vt_sink_count sink1 message peer 127.0.0.2 subject other)"
vt_assert_eq "connections at sink2 (messages_per_connection 1)" 4 "$(vt_sink_count sink2 connect)"

vt_log "connlog logged every connection made after the reload, with the new binding's slot"
vt_wait_until 10 sh -c "[ \$(grep -c . '$CONNLOG') -ge 5 ]" || vt_fail "connlog has $(grep -c . "$CONNLOG") lines, expected 5"
vt_assert_eq "connlog lines" 5 "$(grep -c . "$CONNLOG")"
vt_assert_eq "connlog lines for vip2, slot 2" 3 "$(grep '"binding": *"vip2"' "$CONNLOG" | grep -c '"slot": *2')"
vt_assert_eq "connlog lines for vip1, slot 1 (the open session's message, other.test)" 2 \
    "$(grep '"binding": *"vip1"' "$CONNLOG" | grep -c '"slot": *1')"

vt_log "a reload changing nothing says so, and vipmta stops cleanly"
vt_signal_daemon HUP
vt_wait_until 20 sh -c "[ \$(grep -c 'reload: applied' '$VT_DAEMON_LOG') -ge 2 ]" || vt_fail "the second reload was not applied"
vt_assert_file_contains "the no-change summary" "$VT_DAEMON_LOG" "reload: applied $DL_CONF (bindings 3->3)"

vt_log "a listen address changed: applied except listen, which waits for a restart (warned)"
OTHER=$(vt_free_port)
"$VT_PYTHON" -c "import json,sys; c=json.load(open(sys.argv[1])); c['listen'][0]['port']=int(sys.argv[2]); json.dump(c, open(sys.argv[1],'w'))" \
    "$DL_CONF" "$OTHER"
vt_signal_daemon HUP
vt_wait_until 20 sh -c "[ \$(grep -c 'reload: applied' '$VT_DAEMON_LOG') -ge 3 ]" || vt_fail "the third reload was not applied"
vt_assert_file_contains "the restart warning" "$VT_DAEMON_LOG" "warning [core] reload: listen changed: takes effect after a restart"
vt_assert_file_contains "the summary" "$VT_DAEMON_LOG" "reload: applied $DL_CONF (bindings 3->3, 1 change(s) wait for a restart)"
dl_send sender@src.test user@other.test "still on the old port"
vt_sink_wait sink1 5 30 message >/dev/null || vt_fail "mail sent to the old port after the reload was not delivered"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
