#!/bin/sh
# tls_auth.sh: SMTP AUTH PLAIN/LOGIN after STARTTLS (swaks): relay for authenticated users, per-user binding group, the user in the envelope and delivery log, bad password, AUTH before TLS refused, failures slowed and disconnected, unknown user timed like a bad password, reload of the credentials.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"
. "$VIPMTA_TOP_SRCDIR/t/lib/tls.sh"

vt_require swaks openssl
perl -MIO::Socket::SSL -e 1 2>/dev/null || vt_skip "swaks needs IO::Socket::SSL (libio-socket-ssl-perl) for --tls"
dl_init
LOOP=$(vt_free_port)
OUT=$(vt_free_port)
vt_tls_ca ca
vt_tls_cert ca mta "DNS:mta.test"
vt_tls_passwd "$VT_DIR/users" y alice 'alice pw' carol 'carol pw'
vt_tls_passwd "$VT_DIR/users6" 6 bob 'bob pw'
cat "$VT_DIR/users6" >>"$VT_DIR/users"
vt_start_sink mx "$OUT" --rule 'rcpt:hold@*=451 4.3.0 held for the test'
dl_config "{
  \"listen\": [{\"address\": \"127.0.0.1\", \"port\": $DL_PORT, \"certificates\": [{\"cert\": \"mta.crt\", \"key\": \"mta.key\"}]},
               {\"address\": \"127.0.0.1\", \"port\": $LOOP, \"auth_without_tls\": true}],
  \"relay_from\": [],
  \"tls\": {\"credentials_file\": \"users\", \"auth_max_failures\": 3, \"auth_failure_delay_ms\": 200},
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}, \"vip2\": {\"address\": \"127.0.0.3\"}},
  \"binding_groups\": {\"alices\": [\"vip1\"], \"others\": [\"vip2\"]},
  \"default_binding_group\": \"others\",
  \"binding_rules\": [{\"auth_user\": \"alice\", \"binding_group\": \"alices\"}],
  \"domains\": {\"*\": {\"retry_schedule\": [600]}},
  \"routes\": {\"*\": \"127.0.0.1:$OUT\"}
}"
vt_start_daemon "$DL_CONF"

vt_log "not authenticated: relaying is refused (relay_from is empty)"
vt_swaks --port "$DL_PORT" --tls --from a@src.test --to u@example.test >/dev/null && vt_fail "relayed without AUTH"

vt_log "AUTH PLAIN (yescrypt): relays, from alice's binding group, recorded"
vt_swaks --port "$DL_PORT" --tls --auth PLAIN --auth-user alice --auth-password 'alice pw' \
    --from a@src.test --to u@example.test --header 'Subject: from alice' >/dev/null ||
    vt_fail "alice could not send: $(cat "$VT_DIR/swaks.last.out")"
vt_sink_wait mx 1 20 message subject 'from alice' >/dev/null || vt_fail "alice's mail not relayed"
vt_assert_eq "alice's binding (per-user group)" 127.0.0.2 "$(vt_sink_get mx message peer subject 'from alice')"
dl_wait 1 10 outcome delivered auth_user alice || vt_fail "no delivery log line with auth_user alice"

vt_log "AUTH LOGIN (SHA-512-crypt): relays from the default group"
vt_swaks --port "$DL_PORT" --tls --auth LOGIN --auth-user bob --auth-password 'bob pw' \
    --from b@src.test --to u@example.test --header 'Subject: from bob' >/dev/null ||
    vt_fail "bob could not send: $(cat "$VT_DIR/swaks.last.out")"
vt_sink_wait mx 1 20 message subject 'from bob' >/dev/null || vt_fail "bob's mail not relayed"
vt_assert_eq "bob's binding" 127.0.0.3 "$(vt_sink_get mx message peer subject 'from bob')"

vt_log "the user is in the envelope of a queued message"
vt_swaks --port "$DL_PORT" --tls --auth PLAIN --auth-user carol --auth-password 'carol pw' \
    --from c@src.test --to hold@example.test >/dev/null || vt_fail "carol could not send"
dl_wait 1 20 outcome deferred rcpt hold@example.test || vt_fail "held mail not deferred"
grep -l '^auth carol$' "$VT_DIR"/spool/queue/*.env >/dev/null || vt_fail "no 'auth carol' in the envelope"

vt_log "bad password: 535"
vt_swaks --port "$DL_PORT" --tls --auth PLAIN --auth-user bob --auth-password wrong \
    --from b@src.test --to u@example.test >/dev/null && vt_fail "a bad password was accepted"
grep -q '535 5.7.8' "$VT_DIR/swaks.last.out" || vt_fail "no 535: $(cat "$VT_DIR/swaks.last.out")"

vt_log "AUTH before STARTTLS: not offered, refused with 538"
"$VT_PYTHON" - "$DL_PORT" >"$VT_DIR/cleartext.out" 2>&1 <<'PY' || vt_fail "AUTH in clear: $(cat "$VT_DIR/cleartext.out")"
import base64, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
f.readline()
s.sendall(b"EHLO client.test\r\n")
ehlo = []
while True:
    l = f.readline()
    ehlo.append(l)
    if l[3:4] != b"-":
        break
assert not any(b"AUTH" in l for l in ehlo), ehlo
s.sendall(b"AUTH PLAIN " + base64.b64encode(b"\0bob\0bob pw") + b"\r\n")
r = f.readline()
assert r.startswith(b"538 5.7.11"), r
print("ok")
PY

vt_log "auth_without_tls on a loopback listener: AUTH in clear"
vt_swaks --port "$LOOP" --auth LOGIN --auth-user bob --auth-password 'bob pw' \
    --from b@src.test --to u@example.test --header 'Subject: clear auth' >/dev/null ||
    vt_fail "AUTH on the loopback listener failed: $(cat "$VT_DIR/swaks.last.out")"

vt_log "an unknown user costs what a bad password costs; failures are slowed, then disconnected"
"$VT_PYTHON" - "$DL_PORT" >"$VT_DIR/timing.out" 2>&1 <<'PY' || vt_fail "failures: $(cat "$VT_DIR/timing.out")"
import base64, socket, ssl, sys, time
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def session(src):
    raw = socket.socket()
    raw.bind((src, 0))
    raw.connect(("127.0.0.1", port))
    f = raw.makefile("rb")
    f.readline()
    raw.sendall(b"EHLO client.test\r\nSTARTTLS\r\n")
    while True:
        l = f.readline()
        if l.startswith(b"220"):
            break
    s = ctx.wrap_socket(raw, server_hostname="mta.test")
    g = s.makefile("rb")
    s.sendall(b"EHLO client.test\r\n")
    while g.readline()[3:4] == b"-":
        pass
    return s, g

def attempt(s, g, user, pw):
    t = time.monotonic()
    s.sendall(b"AUTH PLAIN " + base64.b64encode(b"\0" + user + b"\0" + pw) + b"\r\n")
    r = g.readline()
    return time.monotonic() - t, r

# the same number of earlier failures from each address: the same delay
unknown, known = [], []
for src, user, out in (("127.0.0.5", b"nobody", unknown), ("127.0.0.6", b"bob", known)):
    s, g = session(src)
    for i in range(2):
        dt, r = attempt(s, g, user, b"wrong")
        assert r.startswith(b"535 5.7.8"), r
        out.append(dt)
    dt, r = attempt(s, g, user, b"wrong")
    assert r.startswith(b"535 5.7.8"), r
    r = g.readline()
    assert r.startswith(b"421 4.7.0"), ("third failure: no disconnect", r)
    out.append(dt)
print("unknown", unknown, "known", known)
for u, k in zip(unknown, known):
    assert abs(u - k) < 0.5 * k + 0.05, ("timing differs", unknown, known)
assert unknown[1] > unknown[0] * 1.5, ("not slowed down", unknown)
# the address stays refused within the window
s, g = session("127.0.0.5")
dt, r = attempt(s, g, b"bob", b"bob pw")
assert r.startswith(b"421 4.7.0"), r
print("ok")
PY
cat "$VT_DIR/timing.out"

vt_log "reload: a new user in the credentials file can authenticate"
vt_tls_passwd "$VT_DIR/users.new" y dave 'dave pw'
cat "$VT_DIR/users.new" >>"$VT_DIR/users"
vt_signal_daemon HUP
vt_wait_until 10 grep -q 'reload: applied' "$VT_DIR/vipmta.log" || vt_fail "reload not applied"
vt_swaks --port "$DL_PORT" --tls --auth PLAIN --auth-user dave --auth-password 'dave pw' \
    --from d@src.test --to u@example.test >/dev/null || vt_fail "dave could not authenticate after the reload"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
exit 0
