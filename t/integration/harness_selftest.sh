#!/bin/sh
# harness_selftest.sh: proves t/lib/harness.sh, t/lib/sink.py and the dnsmasq helpers work, without the vipmta daemon.
. "$VIPMTA_TOP_SRCDIR/t/lib/harness.sh"
vt_require swaks dnsmasq

vt_init harness_selftest

HAVE_V6=no
"$VT_PYTHON" -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null && HAVE_V6=yes

# --- 1. the sink: rules, records, queries ------------------------------------------------
PORT=$(vt_free_port)
PORT2=$(vt_free_port)
[ "$PORT" != "$PORT2" ] || vt_fail "vt_free_port returned $PORT twice"
V6_LISTEN=
[ "$HAVE_V6" = yes ] && V6_LISTEN="--listen=[::1]:$PORT"
vt_start_sink sink1 "$PORT" ${V6_LISTEN:+"$V6_LISTEN"} --save-dir "$VT_DIR/sink1.msgs" \
    --rule 'rcpt:bad@*=550 5.1.1 no such user' \
    --rule 'rcpt:temp@*=451 4.3.0 try later:1' \
    --rule 'data:*refuse me*=554 5.7.1 content refused'
vt_wait_port 127.0.0.1 "$PORT" 1 || vt_fail "sink port $PORT does not accept"
probe=1 # vt_wait_port made a connection (and a connect record) too

# two messages from 127.0.0.2: one accepted, one to a rejected recipient
vt_swaks --port "$PORT" --local-interface 127.0.0.2 --ehlo client.selftest.test \
    --from sender@selftest.test --to good@example.test \
    --header 'Subject: selftest one' --add-header 'X-Test-Id: st-1' >/dev/null ||
    vt_fail "swaks to good@ failed: $(cat "$VT_DIR/swaks.last.out")"
if vt_swaks --port "$PORT" --local-interface 127.0.0.2 --from sender@selftest.test \
    --to bad@example.test --header 'Subject: selftest two' >/dev/null; then
    vt_fail "swaks to bad@ succeeded; the rcpt rule did not fire"
fi
grep -q '550 5.1.1 no such user' "$VT_DIR/swaks.last.out" || vt_fail "no 550 in the swaks transcript"

# pipelined: of three recipients one is rejected, one deferred once (TIMES=1); dot-stuffing
printf 'Subject: pipelined\r\nX-Test-Id: st-3\r\nReceived: from a\r\nReceived: from b\r\n\r\n.leading dot\r\nend\r\n' \
    >"$VT_DIR/msg3.eml"
vt_swaks --pipeline --port "$PORT" --local-interface 127.0.0.3 --from other@selftest.test \
    --to good@example.test,bad@example.test,temp@example.test --data "$VT_DIR/msg3.eml" >/dev/null ||
    vt_fail "pipelined swaks failed: $(cat "$VT_DIR/swaks.last.out")"
vt_swaks --port "$PORT" --local-interface 127.0.0.3 --from other@selftest.test \
    --to temp@example.test --header 'Subject: second try' >/dev/null ||
    vt_fail "temp@ was refused twice (TIMES=1 not honoured)"
# a data-stage rule on the Subject
if vt_swaks --port "$PORT" --local-interface 127.0.0.3 --from other@selftest.test \
    --to good@example.test --header 'Subject: please REFUSE ME now' >/dev/null; then
    vt_fail "the data rule did not fire"
fi

# a raw client: all commands in a single write (pipelining), byte-exact body, TOS, and ::1
cat >"$VT_DIR/raw.py" <<'PYEOF'
# raw.py: self-test client: pipelined SMTP in one write; writes the body it sent for comparison.
import socket, sys
port, host, tos, body_file = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam)
if fam == socket.AF_INET:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
else:
    s.setsockopt(socket.IPPROTO_IPV6, 67, tos)        # IPV6_TCLASS
s.settimeout(10)
s.connect((host, port))
body = (b"Subject: raw " + host.encode() + b"\r\nX-Test-Id: raw-" + host.encode() +
        b"\r\nMessage-ID: <raw@selftest.test>\r\n\r\n.one\r\n..two\r\nthree.\r\n.\r\n\r\nlast\r\n")
stuffed = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in body.split(b"\r\n"))
s.sendall(b"EHLO raw.selftest.test\r\nMAIL FROM:<raw@selftest.test>\r\nRCPT TO:<bad@example.test>\r\n"
          b"RCPT TO:<r1@example.test>\r\nRCPT TO:<r2@example.test>\r\nDATA\r\n" + stuffed + b".\r\nQUIT\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
codes = [l[:3] for l in data.decode().split("\r\n") if l[3:4] == " "]
want = ["220", "250", "250", "550", "250", "250", "354", "250", "221"]
if codes != want:
    sys.exit("replies %r, wanted %r" % (codes, want))
with open(body_file, "wb") as f:
    f.write(body)
PYEOF
"$VT_PYTHON" "$VT_DIR/raw.py" "$PORT" 127.0.0.1 40 "$VT_DIR/raw4.eml" || vt_fail "raw IPv4 client"
conns=6
if [ "$HAVE_V6" = yes ]; then
    "$VT_PYTHON" "$VT_DIR/raw.py" "$PORT" ::1 72 "$VT_DIR/raw6.eml" || vt_fail "raw IPv6 client"
    conns=7
fi

vt_sink_wait sink1 $((conns + probe)) 10 disconnect >/dev/null ||
    vt_fail "the sink did not record $((conns + probe)) disconnects"
# the brief's core assertions: one message from 127.0.0.2, one reject record
vt_assert_eq "messages from 127.0.0.2" 1 "$(vt_sink_count sink1 message peer 127.0.0.2)"
vt_assert_eq "rcpt rejects of bad@ from 127.0.0.2" 1 \
    "$(vt_sink_count sink1 reject stage rcpt peer 127.0.0.2 rcpt bad@example.test)"
vt_assert_eq "reply of that reject" "550 5.1.1 no such user" "$(vt_sink_get sink1 reject reply peer 127.0.0.2)"
# the rest of what was sent
vt_assert_eq "messages in all" $((conns - 2)) "$(vt_sink_count sink1 message)"
vt_assert_eq "rcpt rejects in all" $((conns - 2)) "$(vt_sink_count sink1 reject stage rcpt)"
vt_assert_eq "451 rejects" 1 "$(vt_sink_count sink1 reject rcpt temp@example.test reply~ '451 *')"
vt_assert_eq "data rejects" 1 "$(vt_sink_count sink1 reject stage data)"
vt_assert_eq "connects" $((conns + probe)) "$(vt_sink_count sink1 connect)"
vt_assert_eq "connects from 127.0.0.2 to the sink's address" 2 \
    "$(vt_sink_count sink1 connect peer 127.0.0.2 local "127.0.0.1:$PORT")"
vt_assert_eq "message st-1 by X-Test-Id" 1 "$(vt_sink_count sink1 message headers.x-test-id st-1)"
vt_assert_eq "st-1 envelope" "sender@selftest.test|[\"good@example.test\"]|client.selftest.test|selftest one" \
    "$(vt_sink_get sink1 message mail_from headers.x-test-id st-1)|$(vt_sink_get sink1 message rcpts headers.x-test-id st-1)|$(vt_sink_get sink1 message helo headers.x-test-id st-1)|$(vt_sink_get sink1 message subject headers.x-test-id st-1)"
vt_assert_eq "pipelined recipients (temp@ deferred once)" '["good@example.test"]' \
    "$(vt_sink_get sink1 message rcpts headers.x-test-id st-3)"
vt_assert_eq "temp@ accepted the second time" 1 "$(vt_sink_count sink1 message rcpts temp@example.test)"
vt_assert_eq "received_count" 2 "$(vt_sink_get sink1 message received_count headers.x-test-id st-3)"
vt_assert_eq "glob query" 1 "$(vt_sink_count sink1 message subject~ 'SELFTEST*' helo~ 'client.*')"

# byte-exact bodies after dot-unstuffing (--save-dir), and the recorded size
f=$(vt_sink_get sink1 message file headers.x-test-id raw-127.0.0.1)
cmp -s "$f" "$VT_DIR/raw4.eml" || vt_fail "the raw IPv4 message differs from what was sent ($f)"
vt_assert_eq "size of the raw message" "$(($(wc -c <"$VT_DIR/raw4.eml")))" \
    "$(vt_sink_get sink1 message size headers.x-test-id raw-127.0.0.1)"
vt_assert_eq "raw message recipients" '["r1@example.test", "r2@example.test"]' \
    "$(vt_sink_get sink1 message rcpts headers.x-test-id raw-127.0.0.1)"
vt_assert_eq "raw message-id" '<raw@selftest.test>' \
    "$(vt_sink_get sink1 message message_id headers.x-test-id raw-127.0.0.1)"
vt_assert_eq "TOS the IPv4 peer sent" 40 "$(vt_sink_get sink1 connect tos peer 127.0.0.1 | tail -n 1)"
if [ "$HAVE_V6" = yes ]; then
    f=$(vt_sink_get sink1 message file peer ::1)
    cmp -s "$f" "$VT_DIR/raw6.eml" || vt_fail "the raw IPv6 message differs from what was sent ($f)"
    vt_assert_eq "IPv6 local address" "[::1]:$PORT" "$(vt_sink_get sink1 connect local peer ::1)"
    vt_assert_eq "traffic class the IPv6 peer sent" 72 "$(vt_sink_get sink1 message tos peer ::1)"
fi
f=$(vt_sink_get sink1 message file headers.x-test-id st-3)
grep -q '^\.leading dot' "$f" || vt_fail "swaks message not dot-unstuffed: $(cat "$f")"
vt_assert_eq "recorded size = saved size" "$(($(wc -c <"$f")))" \
    "$(vt_sink_get sink1 message size headers.x-test-id st-3)"

# the checks can fail: a wrong expectation and a count never reached are caught
if (vt_assert_eq "deliberate mismatch" 2 "$(vt_sink_count sink1 message peer 127.0.0.2)") 2>/dev/null; then
    vt_fail "vt_assert_eq did not catch a mismatch"
fi
if vt_sink_wait sink1 99 1 message >/dev/null; then
    vt_fail "vt_sink_wait did not time out"
fi

# --- 2. a connect rule, --ehlo-ext, --greeting-code, stopping a sink --------------------
vt_start_sink sink2 "$PORT2" --rule 'connect:127.0.0.4=554 5.7.1 go away' --ehlo-ext PIPELINING,SIZE=1000
if vt_swaks --port "$PORT2" --local-interface 127.0.0.4 --to a@example.test >/dev/null; then
    vt_fail "the connect rule did not refuse 127.0.0.4"
fi
grep -q '554 5.7.1 go away' "$VT_DIR/swaks.last.out" || vt_fail "no 554 greeting in the transcript"
vt_swaks --port "$PORT2" --local-interface 127.0.0.5 --to a@example.test --quit-after EHLO >/dev/null ||
    vt_fail "EHLO to sink2 failed"
grep -q '250 SIZE 1000' "$VT_DIR/swaks.last.out" || vt_fail "--ehlo-ext not honoured: $(cat "$VT_DIR/swaks.last.out")"
grep -q 'ENHANCEDSTATUSCODES' "$VT_DIR/swaks.last.out" && vt_fail "ENHANCEDSTATUSCODES advertised though not asked for"
vt_stop_sink sink2
vt_assert_eq "connect reject record" 1 "$(vt_sink_count sink2 reject stage connect peer 127.0.0.4)"
vt_assert_eq "sink2 disconnects, flushed at stop" 2 "$(vt_sink_count sink2 disconnect)"

vt_start_sink sink3 "$PORT2" --greeting-code 421
if vt_swaks --port "$PORT2" --to a@example.test >/dev/null; then
    vt_fail "--greeting-code 421 did not refuse"
fi
grep -q '^<\*\* *421 ' "$VT_DIR/swaks.last.out" || vt_fail "no 421 greeting: $(cat "$VT_DIR/swaks.last.out")"

# --- 3. dnsmasq answers MX and A --------------------------------------------------------
DNS_PORT=$(vt_free_port)
vt_start_dns "$DNS_PORT" --mx-host=example.test,mx1.example.test,10 --host-record=mx1.example.test,127.0.0.1
vt_assert_eq "MX example.test" "10 mx1.example.test" "$(vt_dns_query "$DNS_PORT" example.test MX)"
vt_assert_eq "A mx1.example.test" "127.0.0.1" "$(vt_dns_query "$DNS_PORT" mx1.example.test A)"
vt_dns_query "$DNS_PORT" nosuch.test A >/dev/null 2>&1
vt_assert_eq "status for a name that does not exist" 2 $?
vt_stop_dns "$DNS_PORT"
vt_dns_query "$DNS_PORT" example.test MX >/dev/null 2>&1
vt_assert_eq "status when nothing answers" 3 $?

echo "harness self-test: ok"
exit 0
