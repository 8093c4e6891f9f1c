#!/bin/sh
# accept_basic.sh: swaks and pipelined transactions get "250 queued as ID" only with ID.env/ID.body on disk; the dialogue's replies.
. "$VIPMTA_TOP_SRCDIR/t/integration/accept_lib.sh"

vt_init
acc_pyclient
PORT=$(vt_free_port)
acc_config "$VT_TMP/vipmta.json" "$PORT"
vt_start_daemon "$VT_TMP/vipmta.json"
Q=$VT_TMP/spool/queue

# 1. a plain swaks transaction
out=$(vt_swaks --server 127.0.0.1 --port "$PORT" --from sender@accept.test --to rcpt@example.com \
    --header "X-Test-Id: basic-swaks" 2>&1) || vt_fail "swaks failed: $out"
id=$(printf '%s\n' "$out" | sed -n 's/.*250 2\.0\.0 Ok: queued as \([0-9a-f]*\).*/\1/p')
[ -n "$id" ] || vt_fail "no 'queued as ID' in the swaks output: $out"
[ -f "$Q/$id.env" ] || vt_fail "$Q/$id.env missing after 250"
[ -f "$Q/$id.body" ] || vt_fail "$Q/$id.body missing after 250"
head -n 1 "$Q/$id.body" | grep -q '^Received: from ' || vt_fail "the body does not start with Received:"
grep -q "id $id" "$Q/$id.body" || vt_fail "the Received: header does not name the queue id"
grep -q 'X-Test-Id: basic-swaks' "$Q/$id.body" || vt_fail "the message text is not in $id.body"
grep -q "id=$id client=127.0.0.1: accepted from=<sender@accept.test> nrcpt=1 size=" "$VT_TMP/daemon.log" ||
    vt_fail "no 'accepted' log line for $id"

# 2. swaks with PIPELINING
out=$(vt_swaks --pipeline --server 127.0.0.1 --port "$PORT" --from sender@accept.test \
    --to a@example.com,b@example.org --header "X-Test-Id: basic-pipeline" 2>&1) ||
    vt_fail "swaks --pipeline failed: $out"
id2=$(printf '%s\n' "$out" | sed -n 's/.*250 2\.0\.0 Ok: queued as \([0-9a-f]*\).*/\1/p')
[ -n "$id2" ] || vt_fail "pipelined: no 'queued as ID': $out"
[ -f "$Q/$id2.env" ] && [ -f "$Q/$id2.body" ] || vt_fail "pipelined: $id2 not in the spool"

# 3. the dialogue, pipelining several messages in one write, dot-unstuffing, bare LF
"$VT_PYTHON" - "$PORT" "$Q" <<'EOF' || vt_fail "dialogue scenario failed"
import sys, time, os
from accsmtp import Client, fail
port, q = int(sys.argv[1]), sys.argv[2]
c = Client(port)
c.expect("greeting", c.greeting, 220, "mx.accept.test ESMTP vipmta")
r = c.ehlo()
want = ["250-mx.accept.test", "250-PIPELINING", "250-SIZE 26214400", "250-8BITMIME",
        "250-ENHANCEDSTATUSCODES", "250-SMTPUTF8", "250 HELP"]
if r[2] != want:
    fail("EHLO lines: %r" % r[2])
c.expect("HELO", c.cmd("HELO x.test"), 250, "mx.accept.test")
c.expect("RCPT before MAIL", c.cmd("RCPT TO:<a@example.com>"), 503, "5.5.1")
c.expect("DATA before MAIL", c.cmd("DATA"), 503, "5.5.1")
c.expect("MAIL", c.cmd("MAIL FROM:<s@accept.test>"), 250, "2.1.0")
c.expect("nested MAIL", c.cmd("MAIL FROM:<s@accept.test>"), 503, "5.5.1")
c.expect("DATA before RCPT", c.cmd("DATA"), 503, "5.5.1")
c.expect("RSET", c.cmd("RSET"), 250, "2.0.0")
c.expect("NOOP", c.cmd("NOOP"), 250, "2.0.0")
c.expect("VRFY", c.cmd("VRFY someone"), 252, "2.5.0")
c.expect("HELP", c.cmd("HELP"), 214, "2.0.0")
c.expect("unknown", c.cmd("FROB"), 500, "5.5.2")
c.expect("STARTTLS", c.cmd("STARTTLS"), 502, "5.5.1")
c.expect("MAIL syntax", c.cmd("MAIL FROM:bad"), 501, "5.5.4")
c.expect("EHLO", c.cmd("EHLO again.test"), 250)
# two messages and a NOOP in one write; the second one's end marker split over writes
c.send("MAIL FROM:<s@accept.test>\r\nRCPT TO:<r1@example.com>\r\nRCPT TO:<r2@example.com>\r\nDATA\r\n")
for what in ("MAIL", "RCPT", "RCPT"):
    c.expect("pipelined " + what, c.reply(), 250)
c.expect("DATA", c.reply(), 354)
# (<LF>.<LF> and <LF>.<CR><LF> are text, not the end: no smuggling)
c.send("Subject: one\r\nX-Test-Id: basic-dots\r\n\r\n..leading dot\r\n...two\r\nbare\nlf\n.\n"
       "MAIL FROM:<smuggled@example.com>\n.\r\nend\r\n.\r\n"
       "MAIL FROM:<s@accept.test>\r\nRCPT TO:<r3@example.com>\r\nDATA\r\n")
r1 = c.expect("end of message 1", c.reply(), 250, "2.0.0 Ok: queued as ")
c.expect("MAIL 2", c.reply(), 250)
c.expect("RCPT 2", c.reply(), 250)
c.expect("DATA 2", c.reply(), 354)
for part in ("X-Test-Id: basic-split\r\n\r\nsplit\r", "\n", ".", "\r", "\nNOOP\r\n"):
    c.send(part)
    time.sleep(0.05)
r2 = c.expect("end of message 2", c.reply(), 250, "queued as ")
c.expect("NOOP after message 2", c.reply(), 250)
c.expect("QUIT", c.cmd("QUIT"), 221, "2.0.0")
if not c.closed():
    fail("the connection stays open after QUIT")
id1 = r1[1].split()[-1]
body = open(os.path.join(q, id1 + ".body"), "rb").read()
text = body.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in body else b""
if text != (b".leading dot\r\n..two\r\nbare\r\nlf\r\n\r\nMAIL FROM:<smuggled@example.com>\r\n"
             b"\r\nend\r\n"):
    fail("message 1 text: %r" % body)
if b"\r\n\tid " + id1.encode() not in body and b" id " + id1.encode() not in body:
    fail("message 1: no id in Received: %r" % body[:200])
if b"for <" in body.split(b"\r\nSubject")[0]:
    fail("message 1 has two recipients: no 'for <rcpt>' expected")
for line in body.split(b"\r\n"):
    if len(line) > 78 and line.startswith((b"Received", b"\t")):
        fail("Received: line over 78 characters: %r" % line)
id2 = r2[1].split()[-1]
body2 = open(os.path.join(q, id2 + ".body"), "rb").read()
if not body2.endswith(b"\r\n\r\nsplit\r\n") or b"for <r3@example.com>;" not in body2:
    fail("message 2: %r" % body2)
EOF

# 4. stopping: an idle session gets 421 4.3.2
"$VT_PYTHON" - "$PORT" "$VT_TMP/ready" >"$VT_TMP/stop.out" 2>&1 <<'EOF' &
import sys
from accsmtp import Client
c = Client(int(sys.argv[1]))
c.ehlo()
open(sys.argv[2], "w").close()
c.expect("idle session at stop", c.reply(), 421, "4.3.2")
EOF
py=$!
vt_wait_until 10 test -f "$VT_TMP/ready" || vt_fail "stop scenario: the client did not connect"
vt_stop_daemon || vt_fail "the daemon did not stop cleanly"
wait "$py" || vt_fail "stop scenario: $(cat "$VT_TMP/stop.out")"

# 5. IPv4 and IPv6 listeners on one port (IPV6_V6ONLY), when this host has ::1
if "$VT_PYTHON" -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
    cat >"$VT_TMP/dual.json" <<EOF
{
  "hostname": "mx.accept.test",
  "spool_dir": "$VT_TMP/spool",
  "listen": [{"address": "127.0.0.1", "port": $PORT}, {"address": "::1", "port": $PORT}],
  "relay_from": ["127.0.0.0/8", "::1/128"],
  "routes": {"*": "127.0.0.1:1"}
}
EOF
    vt_start_daemon "$VT_TMP/dual.json"
    "$VT_PYTHON" - "$PORT" <<'EOF' || vt_fail "IPv6 listener scenario failed"
import sys
from accsmtp import Client, message
port = int(sys.argv[1])
for host in ("127.0.0.1", "::1"):
    c = Client(port, host=host)
    c.expect("greeting on " + host, c.greeting, 220)
    c.ehlo()
    c.expect("MAIL", c.cmd("MAIL FROM:<s@accept.test>"), 250)
    c.expect("RCPT over " + host, c.cmd("RCPT TO:<r@example.com>"), 250)
    c.expect("DATA", c.cmd("DATA"), 354)
    c.send(message("basic-" + host) + ".\r\n")
    c.expect("message over " + host, c.reply(), 250, "queued as")
    c.cmd("QUIT")
EOF
    grep -q 'client=::1: connect (relay allowed)' "$VT_TMP/daemon.log" || vt_fail "no IPv6 session logged"

    # 6. a port in use: the second daemon names listen[i] and the address
    mkdir -p "$VT_TMP/spool2"
    sed "s|$VT_TMP/spool\"|$VT_TMP/spool2\"|" "$VT_TMP/dual.json" >"$VT_TMP/busy.json"
    if "$VIPMTA_TOP_BUILDDIR/core/vipmta" -f -c "$VT_TMP/busy.json" >"$VT_TMP/busy.out" 2>&1; then
        vt_fail "a second daemon started on a port in use"
    fi
    grep -q "listen\[0\]: cannot listen on 127.0.0.1:$PORT: Address already in use" "$VT_TMP/busy.out" ||
        vt_fail "no listen[0] error for a port in use: $(cat "$VT_TMP/busy.out")"
    grep -q "listen\[1\]: cannot listen on \[::1\]:$PORT: Address already in use" "$VT_TMP/busy.out" ||
        vt_fail "no listen[1] error for a port in use: $(cat "$VT_TMP/busy.out")"
    vt_stop_daemon || vt_fail "the daemon did not stop cleanly"
else
    echo "note: no ::1 on this host, IPv6 listener not tested"
fi
exit 0
