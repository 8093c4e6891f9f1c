#!/bin/sh
# tls_inbound.sh: STARTTLS and implicit TLS on the daemon (swaks --tls/--tlsc), SNI, require_tls, Received: with TLS, pipelined commands after STARTTLS discarded, certificates reloaded on SIGHUP.
. "$VIPMTA_TOP_SRCDIR/t/lib/harness.sh"
. "$VIPMTA_TOP_SRCDIR/t/lib/tls.sh"

vt_require swaks openssl
perl -MIO::Socket::SSL -e 1 2>/dev/null || vt_skip "swaks needs IO::Socket::SSL (libio-socket-ssl-perl) for --tls"
vt_init
IN=$(vt_free_port)
IMPL=$(vt_free_port)
REQ=$(vt_free_port)
OUT=$(vt_free_port)
vt_tls_ca ca
vt_tls_cert ca main "DNS:mta.test"
vt_tls_cert ca other "DNS:other.test,DNS:*.other.test"
vt_start_sink mx "$OUT" --save-dir "$VT_DIR/saved"
cat >"$VT_DIR/vipmta.json" <<EOC
{ "hostname": "mta.test", "spool_dir": "$VT_DIR/spool",
  "listen": [
    {"address": "127.0.0.1", "port": $IN,
     "certificates": [{"cert": "main.crt", "key": "main.key"}, {"cert": "other.crt", "key": "other.key"}]},
    {"address": "127.0.0.1", "port": $IMPL, "tls": "implicit", "certificates": [{"cert": "main.crt", "key": "main.key"}]},
    {"address": "127.0.0.1", "port": $REQ, "require_tls": true, "certificates": [{"cert": "main.crt", "key": "main.key"}]}],
  "relay_from": ["127.0.0.0/8"],
  "routes": {"*": "127.0.0.1:$OUT"} }
EOC
vt_start_daemon "$VT_DIR/vipmta.json"

# tls_peer PORT [SNI] [implicit]: the subject CN and the TLS version the daemon presents
tls_peer() {
    "$VT_PYTHON" - "$@" <<'PY'
import smtplib, socket, ssl, sys
port, sni = int(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None)
ctx = ssl.create_default_context(cafile=sys.argv[0] and None)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if len(sys.argv) > 3:
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=sni)
else:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = raw.makefile("rb")
    f.readline()
    raw.sendall(b"EHLO client.test\r\n")
    while f.readline()[3:4] == b"-":
        pass
    raw.sendall(b"STARTTLS\r\n")
    assert f.readline().startswith(b"220")
    s = ctx.wrap_socket(raw, server_hostname=sni)
der = s.getpeercert(binary_form=True)
import subprocess
cn = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-nameopt", "multiline"],
                    input=der, capture_output=True).stdout.decode()
cn = [l.split("=", 1)[1].strip() for l in cn.splitlines() if "commonName" in l]
print(cn[0] if cn else "?", s.version())
PY
}

vt_log "STARTTLS with swaks --tls"
vt_swaks --port "$IN" --tls --from a@src.test --to u@example.test --header 'Subject: over starttls' \
    >/dev/null || vt_fail "swaks --tls failed"
vt_sink_wait mx 1 20 message subject 'over starttls' >/dev/null || vt_fail "not relayed"
F=$(vt_sink_get mx message file subject 'over starttls')
vt_assert_file_contains "Received: protocol" "$F" "with ESMTPS"
vt_assert_file_contains "Received: TLS version and cipher" "$F" "(using TLSv1.3 with cipher"

vt_log "implicit TLS with swaks --tlsc"
vt_swaks --port "$IMPL" --tlsc --from a@src.test --to u@example.test --header 'Subject: over implicit' \
    >/dev/null || vt_fail "swaks --tlsc failed"
vt_sink_wait mx 1 20 message subject 'over implicit' >/dev/null || vt_fail "not relayed (implicit)"

vt_log "certificates by SNI, and TLS 1.2 at least"
vt_assert_eq "default certificate" "mta.test TLSv1.3" "$(tls_peer "$IN")"
vt_assert_eq "SNI other.test" "other.test TLSv1.3" "$(tls_peer "$IN" other.test)"
vt_assert_eq "SNI by wildcard" "other.test TLSv1.3" "$(tls_peer "$IN" mx.other.test)"
vt_assert_eq "implicit TLS" "mta.test TLSv1.3" "$(tls_peer "$IMPL" mta.test implicit)"
openssl s_client -connect 127.0.0.1:"$IMPL" -tls1_1 </dev/null >"$VT_DIR/tls11.out" 2>&1 &&
    vt_fail "a TLS 1.1 handshake succeeded: $(cat "$VT_DIR/tls11.out")"

vt_log "require_tls: MAIL before STARTTLS is refused"
vt_swaks --port "$REQ" --from a@src.test --to u@example.test >/dev/null && vt_fail "mail accepted in clear"
grep -q '530 5.7.0 Must issue a STARTTLS command first' "$VT_DIR/swaks.last.out" ||
    vt_fail "no 530 for MAIL before STARTTLS: $(cat "$VT_DIR/swaks.last.out")"
vt_swaks --port "$REQ" --tls --from a@src.test --to u@example.test >/dev/null ||
    vt_fail "require_tls refused mail after STARTTLS"

vt_log "commands pipelined with STARTTLS in clear are discarded, never run"
"$VT_PYTHON" - "$IN" >"$VT_DIR/inject.out" 2>&1 <<'PY' || vt_fail "injection probe: $(cat "$VT_DIR/inject.out")"
import socket, ssl, sys
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = raw.makefile("rb")
f.readline()
raw.sendall(b"EHLO client.test\r\n")
while f.readline()[3:4] == b"-":
    pass
# one packet: STARTTLS, then a transaction in clear (CVE-2011-0411)
raw.sendall(b"STARTTLS\r\nMAIL FROM:<evil@src.test>\r\nRCPT TO:<injected@example.test>\r\n")
line = f.readline()
assert line.startswith(b"220 "), line
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(raw, server_hostname="mta.test")
g = s.makefile("rb")
s.sendall(b"EHLO client.test\r\n")
while g.readline()[3:4] == b"-":
    pass
# the injected MAIL was not run: a RCPT now has no transaction
s.sendall(b"RCPT TO:<after@example.test>\r\n")
r = g.readline()
assert r.startswith(b"503"), r
s.sendall(b"QUIT\r\n")
print("ok", r.decode().strip())
PY
vt_assert_file_contains "discard logged" "$VT_DIR/vipmta.log" "discarded"
vt_assert_eq "injected recipient never queued" 0 "$(grep -c 'injected@example.test' "$VT_DIR/vipmta.log")"

vt_log "SIGHUP reloads the certificates (renewed files, same config)"
vt_tls_cert ca main "DNS:renewed.test"
vt_signal_daemon HUP
vt_wait_until 10 grep -q 'reload: applied' "$VT_DIR/vipmta.log" || vt_fail "reload not applied"
vt_assert_eq "renewed certificate served" "renewed.test TLSv1.3" "$(tls_peer "$IN")"

vt_log "a broken key makes the reload fail and keeps the running certificates"
echo garbage >"$VT_DIR/main.key"
vt_signal_daemon HUP
vt_wait_until 10 grep -q 'reload: .*main.key' "$VT_DIR/vipmta.log" || vt_fail "the bad key was not reported"
vt_assert_eq "still the renewed certificate" "renewed.test TLSv1.3" "$(tls_peer "$IN")"
vt_stop_daemon || vt_fail "the daemon exited with status $?"

vt_log "vipmta -t names a missing certificate"
rm -f "$VT_DIR/other.crt"
"$VIPMTA_TOP_BUILDDIR/core/vipmta" -t -c "$VT_DIR/vipmta.json" >"$VT_DIR/t.out" 2>&1 && vt_fail "vipmta -t accepted a missing certificate"
vt_assert_file_contains "-t message" "$VT_DIR/t.out" "other.crt: cannot open: No such file or directory"
exit 0
