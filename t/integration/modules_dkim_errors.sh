#!/bin/sh
# modules_dkim_errors.sh: the dkim module's errors in the daemon: each bad key and bad option gives its exact line at vipmta -t and at start; a message that cannot be signed (its read fails) is deferred with 451 or accepted unsigned with a warning, as configured, and counted.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"
. "$VIPMTA_TOP_SRCDIR/t/lib/faults.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
[ -e "$MODDIR/dkim.la" ] || vt_skip "the dkim module is not built in $MODDIR"
vt_require openssl
VIPMTA=$VIPMTA_TOP_BUILDDIR/core/vipmta
SINK=$(vt_free_port)
MPORT=$(vt_free_port)
KEYS=$VT_DIR/keys
mkdir -p "$KEYS"
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/rsa.pem" 2>/dev/null
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -out "$KEYS/small.pem" 2>/dev/null
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$KEYS/ec.pem"
openssl genpkey -algorithm ed25519 -out "$KEYS/ed.pem"
chmod 600 "$KEYS"/*.pem
cp "$KEYS/rsa.pem" "$KEYS/open.pem" && chmod 640 "$KEYS/open.pem"
ln -s rsa.pem "$KEYS/link.pem"

# dk_config MODULE_ENTRY_MEMBERS: the config with one dkim entry holding them
dk_config() {
    dl_config "{ ${2:+$2,}
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}, \"vip2\": {\"address\": \"127.0.0.3\"}},
  \"binding_groups\": {\"pool\": [\"vip1\"]}, \"default_binding_group\": \"pool\",
  \"binding_rules\": [{\"header\": \"X-Binding\"}],
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"},
  \"metrics\": {\"address\": \"127.0.0.1\", \"port\": $MPORT},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"dkim\", $1}]
}"
}
# dk_refused WHAT EXPECTED_LINE: vipmta -t prints it (exit 1), and the daemon
# does not start, saying the same
dk_refused() {
    out=$("$VIPMTA" -t -c "$DL_CONF" 2>&1) && vt_fail "$1: vipmta -t accepted it"
    printf '%s\n' "$out" | grep -qxF "$2" || vt_fail "$1: vipmta -t said:
$out
expected the line:
$2"
    "$VIPMTA" -f -c "$DL_CONF" >"$VT_DIR/start.out" 2>&1 && vt_fail "$1: the daemon started"
    grep -qF "$2" "$VT_DIR/start.out" || vt_fail "$1: at start:
$(cat "$VT_DIR/start.out")"
}
key() { # key DOMAIN SELECTOR FILE
    echo "{\"domain\": \"$1\", \"selector\": \"$2\", \"file\": \"$3\"}"
}

vt_log "bad keys: each named, with what is wrong and what to do"
dk_config "\"options\": {\"keys\": [$(key a.test s "$KEYS/small.pem")]}"
dk_refused "a 1024-bit key" "modules[0].options.keys[0].file: $KEYS/small.pem: key size: expected an RSA key of at least 2048 bits, found 1024 bits: receivers treat shorter keys as unsigned; make a new one with openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048"
dk_config "\"options\": {\"keys\": [$(key a.test s "$KEYS/open.pem")]}"
dk_refused "a key others can read" "modules[0].options.keys[0].file: $KEYS/open.pem: permissions: expected no access for group or others, found mode 0640: a private key must stay private; run chmod 600 on it (and replace the key if others could read it)"
dk_config "\"options\": {\"keys\": [$(key a.test s "$KEYS/link.pem")]}"
dk_refused "a symbolic link" "modules[0].options.keys[0].file: $KEYS/link.pem: is a symbolic link: name the key file itself"
dk_config "\"options\": {\"keys\": [$(key a.test s "$KEYS/none.pem")]}"
dk_refused "a missing key" "modules[0].options.keys[0].file: $KEYS/none.pem: cannot open it: No such file or directory: create the key (openssl genpkey, see docs/modules/dkim.md) or fix the path"
dk_config "\"options\": {\"keys\": [$(key a.test s "$KEYS/ec.pem")]}"
dk_refused "an EC key" "modules[0].options.keys[0].file: $KEYS/ec.pem: key type: expected an RSA or Ed25519 private key, found id-ecPublicKey: DKIM signs with rsa-sha256 or ed25519-sha256 only"
dk_config "\"options\": {\"keys\": [{\"domain\": \"a.test\", \"selector\": \"s\", \"file\": \"$KEYS/ed.pem\", \"algorithm\": \"rsa-sha256\"}]}"
dk_refused "the wrong algorithm" "modules[0].options.keys[0].algorithm: is \"rsa-sha256\" but $KEYS/ed.pem holds an Ed25519 key: fix the algorithm or name the right file"
if [ "$(id -u)" = 0 ]; then
    chown 1:1 "$KEYS/rsa.pem"
    dk_config "\"options\": {\"keys\": [$(key a.test s "$KEYS/rsa.pem")]}"
    dk_refused "a key another user owns" "modules[0].options.keys[0].file: $KEYS/rsa.pem: owner: expected root or uid 0 (the user vipmta runs as), found uid 1: refusing a key another user controls; run chown 0: on it"
    chown 0:0 "$KEYS/rsa.pem"
fi

vt_log "bad options"
dk_config "\"options\": {\"keys\": [$(key a.test s "$KEYS/rsa.pem")], \"canonicalization\": \"nofws\"}"
dk_refused "a canonicalization" "modules[0].options.canonicalization: must be \"relaxed/relaxed\", \"relaxed/simple\", \"simple/relaxed\" or \"simple/simple\", not \"nofws\""
dk_config "\"options\": {\"keys\": [$(key a.test s "$KEYS/rsa.pem")], \"fallback_domain\": \"esp.test\"}"
dk_refused "a fallback without a key" "modules[0].options.fallback_domain: no key for \"esp.test\" here: add one to keys (the fallback domain signs for senders without a key)"
dk_config "\"options\": {\"keys\": [$(key a.test s "$KEYS/rsa.pem")], \"headers\": [\"To\"]}"
dk_refused "headers without From" "modules[0].options.headers: must include \"From\" (RFC 6376 requires it signed)"
dk_config "\"options\": {\"keys\": [$(key a.test s "$KEYS/rsa.pem")], \"signing\": true}"
dk_refused "an unknown option" "modules[0].options: unknown key \"signing\" (allowed: sign, keys, fallback_domain, canonicalization, on_error, headers, oversign, expire, workers, binding_groups)"
dk_config "\"options\": {\"keys\": [$(key a.test s "$KEYS/rsa.pem")]}, \"bindings\": {\"vip1\": {\"workers\": 2}}"
dk_refused "a global option in a binding" "modules[0].bindings.vip1: unknown key \"workers\" (allowed: sign, keys, fallback_domain, canonicalization, on_error)"
dk_config "\"options\": {\"keys\": [$(key a.test s "$KEYS/rsa.pem")]}, \"domains\": {\"x.test\": {\"sign\": false}}"
dk_refused "a per-domain scope" "modules[0].domains: module \"dkim\" takes no per-domain options (it reads \"options\" and the scopes it documents): move them there or remove \"domains\""

vt_log "a message that cannot be signed: 451 (the default) or accepted unsigned (on_error accept)"
vt_faults_init
# bodies to their files (spool_memory 0), where the injected read faults reach them
dk_config "\"options\": {\"keys\": [$(key example.test r1 "$KEYS/rsa.pem")]}, \"bindings\": {\"vip2\": {\"on_error\": \"accept\"}}" \
    "\"spool_memory\": 0"
vt_start_sink sink "$SINK"
vt_start_daemon "$DL_CONF"
# dk_data [X-Binding]: one message; prints the reply to its data
dk_data() {
    "$VT_PYTHON" - "$DL_PORT" "${1:-}" <<'EOF'
import smtplib, sys
port, binding = int(sys.argv[1]), sys.argv[2]
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
s.ehlo()
s.mail("alice@example.test")
s.rcpt("bob@dest.test")
code, text = s.data(("%sFrom: alice@example.test\r\nTo: bob@dest.test\r\nSubject: t\r\nX-Test-Id: %s\r\n\r\nhi\r\n"
                     % ("X-Binding: %s\r\n" % binding if binding else "", binding or "pool")).encode())
print(code, text.decode())
s.quit()
EOF
}
vt_faults "pread path=*.body count=0"
vt_assert_eq "the client is told to come back" "451 4.7.5 Message could not be DKIM-signed, try again later" "$(dk_data)"
vt_assert_file_contains "the warning" "$VT_DAEMON_LOG" ": not signed: cannot read its header section: Input/output error; deferred with 451 (on_error \"defer\")"
reply=$(dk_data vip2)
vt_assert_match "vip2 accepts it unsigned" "250 *" "$reply"
vt_assert_file_contains "the warning" "$VT_DAEMON_LOG" ": not signed: cannot read its header section: Input/output error; accepted unsigned (on_error \"accept\")"
vt_faults ""
vt_sink_wait sink 1 30 message headers.x-test-id vip2 >/dev/null || vt_fail "vip2's message not delivered"
vt_assert_eq "nothing from the deferred one" 0 "$(vt_sink_count sink message headers.x-test-id pool)"
vt_assert_match "with the faults gone it is signed" "250 *" "$(dk_data)"
vt_sink_wait sink 1 30 message headers.x-test-id pool >/dev/null || vt_fail "not delivered after the faults"
"$VT_PYTHON" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode())' "$MPORT" >"$VT_DIR/scrape.txt"
vt_assert_file_contains "failures counted" "$VT_DIR/scrape.txt" 'vipmta_dkim_messages_total{module="dkim",outcome="failed",domain="",algorithm=""} 2'
vt_assert_file_contains "the good one counted" "$VT_DIR/scrape.txt" 'vipmta_dkim_messages_total{module="dkim",outcome="signed",domain="example.test",algorithm="rsa-sha256"} 1'
vt_stop_daemon || vt_fail "the daemon did not stop cleanly"
exit 0
