#!/bin/sh
# deliver_bindings.sh: mail leaves from the chosen binding's address (rules, a group round-robin) and EHLOs as it.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
SINK=$(vt_free_port)
vt_start_sink sink "$SINK" --save-dir "$VT_DIR/mail"
dl_config "{
  \"bindings\": {
    \"vip1\": {\"address\": \"127.0.0.2\", \"ehlo\": \"vip1.deliver.test\"},
    \"vip2\": {\"address\": \"127.0.0.3\", \"ehlo\": \"vip2.deliver.test\"}
  },
  \"binding_groups\": {\"pool\": [\"vip1\", \"vip2\"]},
  \"default_binding_group\": \"pool\",
  \"binding_rules\": [
    {\"recipient_domain\": \"x.test\", \"binding\": \"vip2\"},
    {\"recipient_domain\": \"y.test\", \"binding\": \"vip1\"}
  ],
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"}
}"
vt_start_daemon "$DL_CONF"

vt_log "mail for x.test goes out from vip2, y.test from vip1, z.test from the pool"
dl_send sender@src.test a@x.test "to x" 3
dl_send sender@src.test b@y.test "to y" 3
dl_send sender@src.test c@z.test "to z" 4
vt_sink_wait sink 10 30 message >/dev/null || vt_fail "the sink got $(vt_sink_count sink message) of 10 messages"

vt_assert_eq "x.test messages from 127.0.0.3" 3 "$(vt_sink_count sink message rcpts a@x.test peer 127.0.0.3)"
vt_assert_eq "x.test EHLO as vip2" 3 "$(vt_sink_count sink message rcpts a@x.test helo vip2.deliver.test)"
vt_assert_eq "y.test messages from 127.0.0.2" 3 "$(vt_sink_count sink message rcpts b@y.test peer 127.0.0.2)"
vt_assert_eq "y.test EHLO as vip1" 3 "$(vt_sink_count sink message rcpts b@y.test helo vip1.deliver.test)"
z2=$(vt_sink_count sink message rcpts c@z.test peer 127.0.0.2)
z3=$(vt_sink_count sink message rcpts c@z.test peer 127.0.0.3)
vt_assert_eq "z.test messages" 4 "$((z2 + z3))"
if [ "$z2" -lt 1 ] || [ "$z3" -lt 1 ]; then
    vt_fail "the pool did not use both bindings for z.test (vip1 $z2, vip2 $z3)"
fi
vt_assert_eq "connections from elsewhere" 0 "$(vt_sink_count sink connect peer 127.0.0.1)"

vt_log "lines starting with dots arrive intact (stuffed on the wire, unstuffed by the sink)"
vt_assert_eq "messages" 10 "$(vt_sink_count sink message)"
"$VT_PYTHON" - "$VT_DIR/mail" <<'PY' || vt_fail "a message body was altered in transit"
import os, sys
d = sys.argv[1]
files = [os.path.join(d, f) for f in os.listdir(d)]
assert len(files) == 10, files
for p in files:
    data = open(p, "rb").read()
    want = b"\r\n\r\nHello.\r\n.a line starting with a dot\r\n..and two\r\nBye.\r\n"
    if not data.endswith(want):
        sys.exit("%s ends with %r" % (p, data[-80:]))
PY

vt_log "the delivery log names binding, source, destination"
dl_wait 10 10 outcome delivered || vt_fail "delivery log: $(dl_count outcome delivered) delivered lines, want 10"
vt_assert_eq "x.test log lines" 3 "$(dl_count rcpt a@x.test outcome delivered binding vip2 slot 2 \
    source~ '127.0.0.3:*' destination "127.0.0.1:$SINK" mx 127.0.0.1 domain x.test)"
vt_assert_eq "y.test log lines" 3 "$(dl_count rcpt b@y.test outcome delivered binding vip1 slot 1 \
    source~ '127.0.0.2:*')"
vt_assert_eq "reply recorded" 10 "$(dl_count outcome delivered reply~ '250 *')"

vt_log "everything delivered: the spool is empty"
vt_wait_until 10 sh -c "[ -z \"\$(ls '$VT_DIR/spool/queue')\" ]" || vt_fail "spool not empty: $(ls "$VT_DIR/spool/queue")"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
