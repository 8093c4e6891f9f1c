#!/bin/sh
# accept_relay.sh: never an open relay: a client outside relay_from may only send to relay_domains; relay_from clients anywhere.
. "$VIPMTA_TOP_SRCDIR/t/integration/accept_lib.sh"

vt_init
acc_pyclient
PORT=$(vt_free_port)
# 127.0.0.1 (where the tests connect from) is NOT in relay_from
acc_config "$VT_TMP/vipmta.json" "$PORT" '["127.0.0.2/32"]' '["local.test"]'
vt_start_daemon "$VT_TMP/vipmta.json"

"$VT_PYTHON" - "$PORT" "$VT_TMP/spool/queue" <<'EOF' || vt_fail "relay scenario failed"
import sys, os
from accsmtp import Client, fail, message
port, q = int(sys.argv[1]), sys.argv[2]

c = Client(port)
c.ehlo()
c.expect("MAIL from a non-relay client", c.cmd("MAIL FROM:<someone@elsewhere.example>"), 250)
want = ("554 5.7.1 <victim@example.com>: Relay access denied (client 127.0.0.1 is not in "
        "relay_from and example.com is not in relay_domains)")
r = c.cmd("RCPT TO:<victim@example.com>")
if r[1] != want:
    fail("open relay check: got %r, want %r" % (r[1], want))
c.expect("subdomain of a relay domain", c.cmd("RCPT TO:<a@sub.local.test>"), 554, "5.7.1")
c.expect("relay domain", c.cmd("RCPT TO:<user@local.test>"), 250)
c.expect("relay domain, other case", c.cmd("RCPT TO:<user2@LOCAL.Test>"), 250)
c.expect("DATA", c.cmd("DATA"), 354)
c.send(message("relay-local") + ".\r\n")
r = c.expect("message to relay_domains", c.reply(), 250, "queued as")
env = open(os.path.join(q, r[1].split()[-1] + ".env")).read()
if "victim@example.com" in env:
    fail("the refused recipient is in the envelope: %r" % env)
# only refused recipients: DATA is refused
c.expect("MAIL", c.cmd("MAIL FROM:<x@elsewhere.example>"), 250)
c.expect("RCPT", c.cmd("RCPT TO:<victim@example.org>"), 554, "5.7.1")
c.expect("DATA without valid recipients", c.cmd("DATA"), 554, "5.5.1")
c.cmd("QUIT")
c.close()

# a client in relay_from may send anywhere
c = Client(port, source=("127.0.0.2", 0))
c.ehlo()
c.expect("MAIL", c.cmd("MAIL FROM:<s@accept.test>"), 250)
c.expect("relay_from client, any domain", c.cmd("RCPT TO:<anyone@example.com>"), 250)
c.expect("DATA", c.cmd("DATA"), 354)
c.send(message("relay-relayfrom") + ".\r\n")
c.expect("relayed message", c.reply(), 250, "queued as")
c.cmd("QUIT")
EOF

grep -q 'client=127.0.0.1: reject: RCPT from=<someone@elsewhere.example> to=<victim@example.com>: 554 5.7.1 Relay access denied' \
    "$VT_TMP/daemon.log" || vt_fail "no log line for the refused relay attempt"
if grep -rqs 'victim@' "$VT_TMP/spool/queue"; then
    vt_fail "a refused recipient reached the spool"
fi
vt_stop_daemon || vt_fail "the daemon did not stop cleanly"

# X-Binding: honoured for relay_from clients only
cat >"$VT_TMP/xbinding.json" <<EOF
{
  "hostname": "mx.accept.test",
  "spool_dir": "$VT_TMP/spool",
  "listen": [{"address": "127.0.0.1", "port": $PORT}],
  "relay_from": ["127.0.0.2/32"],
  "relay_domains": ["local.test"],
  "bindings": {"vip1": {"address": "127.0.0.1"}},
  "binding_rules": [{"header": "X-Binding"}],
  "routes": {"*": "127.0.0.1:1"}
}
EOF
vt_start_daemon "$VT_TMP/xbinding.json"
"$VT_PYTHON" - "$PORT" "$VT_TMP/spool/queue" <<'EOF' || vt_fail "X-Binding scenario failed"
import sys, os
from accsmtp import Client, fail, message
port, q = int(sys.argv[1]), sys.argv[2]

def send(source, tid):
    c = Client(port, source=source)
    c.ehlo()
    c.expect("MAIL", c.cmd("MAIL FROM:<s@accept.test>"), 250)
    c.expect("RCPT", c.cmd("RCPT TO:<user@local.test>"), 250)
    c.expect("DATA", c.cmd("DATA"), 354)
    c.send("Subject: binding\r\nX-Binding: vip1\r\nX-Test-Id: %s\r\n\r\nbody\r\n.\r\n" % tid)
    r = c.expect("message " + tid, c.reply(), 250, "queued as")
    c.cmd("QUIT")
    env = open(os.path.join(q, r[1].split()[-1] + ".env")).read().splitlines()
    return [l.split(" ", 1)[1] for l in env if l.startswith("binding ")]

got = send(("127.0.0.2", 0), "xb-relay")
if got != ["vip1"]:
    fail("X-Binding from a relay_from client: binding %r, want vip1" % got)
got = send(("127.0.0.1", 0), "xb-outsider")
if got != ["default"]:
    fail("X-Binding from a client outside relay_from must be ignored: binding %r" % got)
EOF
vt_stop_daemon || vt_fail "the daemon did not stop cleanly"
exit 0
