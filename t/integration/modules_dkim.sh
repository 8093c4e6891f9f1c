#!/bin/sh
# modules_dkim.sh: the dkim module in the daemon: mail relayed to the sink leaves signed (RSA, Ed25519, both) and dkimpy verifies it with the keys served by a DNS server on loopback; awkward messages verify, an altered one fails; skips, per-binding settings, the delivery log, the metrics; a reload swaps the keys and a bad key is refused.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
TXT=$VIPMTA_TOP_BUILDDIR/modules/vipmta-dkim-txt
VERIFY=$VIPMTA_TOP_SRCDIR/t/lib/dkim_verify.py
[ -e "$MODDIR/dkim.la" ] || vt_skip "the dkim module is not built in $MODDIR"
vt_require openssl dnsmasq
/usr/bin/python3 -c 'import dkim, nacl, dns.message' 2>/dev/null ||
    vt_skip "dkimpy with Ed25519 and dnspython are needed (python3-dkim python3-nacl python3-dnspython: scripts/deps)"
SINK=$(vt_free_port)
DNS=$(vt_free_port)
MPORT=$(vt_free_port)
KEYS=$VT_DIR/keys
mkdir -p "$VT_DIR/eml" "$KEYS"
chmod 700 "$KEYS"

vt_log "keys made by openssl genpkey; their TXT records computed by openssl alone"
for k in r1 r2; do
    openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/$k.pem" 2>/dev/null ||
        vt_error "openssl genpkey rsa failed"
done
openssl genpkey -algorithm ed25519 -out "$KEYS/e1.pem" || vt_error "openssl genpkey ed25519 failed"
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$KEYS/esp.pem" 2>/dev/null
chmod 600 "$KEYS"/*.pem
# txt_of NAME ed25519|rsa: "v=DKIM1; k=...; p=..." from the public key, per RFC 6376 / RFC 8463
txt_of() {
    if [ "$2" = ed25519 ]; then
        echo "v=DKIM1; k=ed25519; p=$(openssl pkey -in "$KEYS/$1.pem" -pubout -outform DER | tail -c 32 | base64 -w0)"
    else
        echo "v=DKIM1; k=rsa; p=$(openssl pkey -in "$KEYS/$1.pem" -pubout -outform DER | base64 -w0)"
    fi
}
R1=$(txt_of r1 rsa)
R2=$(txt_of r2 rsa)
E1=$(txt_of e1 ed25519)
ESP=$(txt_of esp rsa)
vt_assert_eq "vipmta-dkim-txt -r prints the RSA record" "$R1" "$("$TXT" -r "$KEYS/r1.pem")"
vt_assert_eq "vipmta-dkim-txt -r prints the Ed25519 record" "$E1" "$("$TXT" -r "$KEYS/e1.pem")"
vt_assert_match "vipmta-dkim-txt: a zone file line, split in strings of 255" \
    "r1._domainkey.example.test. IN TXT ( \"v=DKIM1; k=rsa; p=*\" \"*\" )" \
    "$("$TXT" -s r1 -d example.test "$KEYS/r1.pem" 2>/dev/null)"

vt_start_dns "$DNS" "--txt-record=r1._domainkey.example.test,$R1" \
    "--txt-record=r2._domainkey.example.test,$R2" "--txt-record=e1._domainkey.example.test,$E1" \
    "--txt-record=esp._domainkey.esp.test,$ESP"
vt_assert_eq "the DNS server serves the RSA key" 0 "$(/usr/bin/python3 - "$DNS" "$R1" <<'EOF'
import sys, dns.message, dns.query, dns.rdatatype
q = dns.message.make_query("r1._domainkey.example.test", dns.rdatatype.TXT)
r = dns.query.udp(q, "127.0.0.1", port=int(sys.argv[1]), timeout=5)
txt = b"".join(r.answer[0][0].strings).decode()
print(0 if txt == sys.argv[2] else 1)
EOF
)"

# dk_config KEYS_JSON [EXTRA_OPTIONS_JSON]: the daemon's config with the dkim module
dk_config() {
    dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}, \"vip2\": {\"address\": \"127.0.0.3\"}},
  \"binding_groups\": {\"pool\": [\"vip1\"]}, \"default_binding_group\": \"pool\",
  \"binding_rules\": [{\"header\": \"X-Binding\"}],
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"},
  \"metrics\": {\"address\": \"127.0.0.1\", \"port\": $MPORT},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"dkim\", \"debug_level\": \"debug\",
    \"options\": {\"keys\": $1, \"workers\": 2, \"expire\": 604800 ${2:+, $2}},
    \"bindings\": {\"vip2\": {\"sign\": false}}}]
}"
}
KEYS_A="[{\"domain\": \"example.test\", \"selector\": \"r1\", \"file\": \"$KEYS/r1.pem\"},
         {\"domain\": \"example.test\", \"selector\": \"e1\", \"file\": \"$KEYS/e1.pem\"},
         {\"domain\": \"esp.test\", \"selector\": \"esp\", \"file\": \"$KEYS/esp.pem\"}]"
dk_config "$KEYS_A"
vt_start_sink sink "$SINK" --save-dir "$VT_DIR/eml"
vt_start_daemon "$DL_CONF"

# dk_send ID FILE [FROM]: sends the message in FILE (its lines made CRLF by
# smtplib, dot-stuffed on the wire) with X-Test-Id: ID first; fails unless 250
dk_send() {
    "$VT_PYTHON" - "$DL_PORT" "$1" "$2" "${3:-alice@example.test}" <<'EOF' || vt_fail "dk_send $1: not accepted"
import smtplib, sys
port, tid, path, sender = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
body = open(path, "rb").read()
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
s.ehlo()
eightbit = any(c >= 0x80 for c in body)
s.sendmail(sender, ["bob@dest.test"], b"X-Test-Id: " + tid.encode() + b"\r\n" + body,
           mail_options=["BODY=8BITMIME"] if eightbit else [])
s.quit()
EOF
}
# dk_eml ID: the file the sink saved for message ID (waits for it)
dk_eml() {
    vt_sink_wait sink 1 30 message headers.x-test-id "$1" >/dev/null || vt_fail "$1 not delivered"
    vt_sink_get sink message file headers.x-test-id "$1"
}
# dk_verify ID EXPECT: dkimpy's verdict on message ID at the sink (0: EXPECT signatures, all good)
dk_verify() {
    /usr/bin/python3 "$VERIFY" --dns "127.0.0.1:$DNS" --expect "$2" "$(dk_eml "$1")" >"$VT_DIR/verify.$1.out" 2>&1
}

printf 'From: Alice <alice@example.test>\nTo: bob@dest.test\nSubject: plain\nDate: Sun, 1 Dec 2024 12:00:00 +0000\nMessage-ID: <plain@example.test>\n\nHello Bob.\n' >"$VT_DIR/plain.txt"
printf 'From: "A display name long enough to be folded, with a comma"\n  <alice@example.test>\nTo: a@dest.test, b@dest.test, c@dest.test, d@dest.test, e@dest.test, f@dest.test,\n\tg@dest.test, h@dest.test, i@dest.test, j@dest.test, k@dest.test, l@dest.test\nSubject: =?UTF-8?B?w6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOp?=\n =?UTF-8?B?w6nDqcOpw6nDqcOp?=\n\nfolded\n' >"$VT_DIR/folded.txt"
printf 'From: alice@example.test\nTo: bob@dest.test\nSubject: 8bit\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\ngr\303\274\303\237e, \342\202\254 5\n' >"$VT_DIR/8bit.txt"
printf 'From: alice@example.test\nTo: bob@dest.test\nSubject: empty\n\n' >"$VT_DIR/empty.txt"
printf 'From: alice@example.test\nTo: bob@dest.test\nSubject: blank\n\ntext\n\n\n\n' >"$VT_DIR/blank.txt"
printf 'From: alice@example.test\nTo: bob@dest.test\nSubject: dots\n\n.leading dot\n..two dots\n.\n...\nend\n' >"$VT_DIR/dots.txt"

vt_log "RSA and Ed25519: two signatures, both verified by dkimpy through the DNS server"
dk_send plain "$VT_DIR/plain.txt"
dk_verify plain 2 || vt_fail "plain does not verify: $(cat "$VT_DIR/verify.plain.out")"
vt_assert_eq "dkimpy's verdicts" "pass d=example.test s=r1 a=rsa-sha256
pass d=example.test s=e1 a=ed25519-sha256" "$(cat "$VT_DIR/verify.plain.out")"
eml=$(dk_eml plain)
vt_assert_match "the signatures come first, before the core's Received:" "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test; s=r1;*" "$(head -n 1 "$eml")"
vt_assert_eq "Received: is not signed" 0 "$(tr -d '\r\n\t ' <"$eml" | grep -c 'h=[^;]*Received')"
vt_assert_eq "x= is t= + expire" 604800 "$(/usr/bin/python3 -c '
import re, sys
v = re.sub(r"\s+", "", open(sys.argv[1]).read().split("\n\n")[0])
t = int(re.search(r";t=(\d+)", v).group(1)); x = int(re.search(r";x=(\d+)", v).group(1))
print(x - t)' "$eml")"

vt_log "a message changed on the way fails verification (the check can fail)"
sed 's/Hello Bob\./Hello Eve./' "$eml" >"$VT_DIR/altered.eml"
/usr/bin/python3 "$VERIFY" --dns "127.0.0.1:$DNS" --expect 2 "$VT_DIR/altered.eml" >"$VT_DIR/verify.altered.out" 2>&1 &&
    vt_fail "an altered message verified: $(cat "$VT_DIR/verify.altered.out")"
vt_assert_eq "both signatures fail" 2 "$(grep -c '^fail' "$VT_DIR/verify.altered.out")"

vt_log "long folded headers, an 8-bit body, an empty body, trailing blank lines, dot lines"
for m in folded 8bit empty blank dots; do
    dk_send "$m" "$VT_DIR/$m.txt"
done
for m in folded 8bit empty blank dots; do
    dk_verify "$m" 2 || vt_fail "$m does not verify: $(cat "$VT_DIR/verify.$m.out")"
done
vt_assert_eq "the dots arrive unstuffed" ".leading dot
..two dots
.
...
end" "$(tr -d '\r' <"$(dk_eml dots)" | sed '/^$/d' | tail -n 5)"

vt_log "a sender without a key is not signed (logged, counted); the fallback domain signs for another"
printf 'From: someone@customer.test\nTo: bob@dest.test\nSubject: nokey\n\nhi\n' >"$VT_DIR/nokey.txt"
dk_send nokey "$VT_DIR/nokey.txt" someone@customer.test
vt_assert_eq "no signature" 0 "$(grep -c '^DKIM-Signature' "$(dk_eml nokey)")"
vt_wait_until 10 grep -q 'not signed: no key for the From domain customer.test and no fallback_domain' "$VT_DAEMON_LOG" ||
    vt_fail "no log line for the skip"
printf 'X-Binding: vip2\nFrom: alice@example.test\nTo: bob@dest.test\nSubject: vip2\n\nhi\n' >"$VT_DIR/vip2.txt"
dk_send vip2 "$VT_DIR/vip2.txt"
vt_assert_eq "vip2 signs nothing (\"sign\": false per binding)" 0 "$(grep -c '^DKIM-Signature' "$(dk_eml vip2)")"
vt_assert_eq "vip2's message left from vip2" 127.0.0.3 "$(vt_sink_get sink message peer headers.x-test-id vip2)"

vt_log "the delivery log lists the signatures each message left with"
vt_wait_until 10 grep -q '"rcpt":"bob@dest.test".*"dkim"' "$DL_LOG" || vt_fail "no dkim field in the delivery log"
vt_assert_eq "the plain message's signatures" '[{"d": "example.test", "s": "r1", "a": "rsa-sha256"}, {"d": "example.test", "s": "e1", "a": "ed25519-sha256"}]' \
    "$("$VT_PYTHON" - "$DL_LOG" "$(grep -h '^Received:' "$(dk_eml plain)" -A1 | grep -o 'id [0-9a-f]*' | head -n1 | cut -c4-)" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o.get("id") == sys.argv[2] and o.get("outcome") == "delivered":
        print(json.dumps(o.get("dkim")))
        break
EOF
)"

vt_log "the metrics count per outcome, domain and algorithm"
scrape() {
    "$VT_PYTHON" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode())' "$MPORT"
}
scrape >"$VT_DIR/scrape.txt"
vt_assert_file_contains "signed with RSA" "$VT_DIR/scrape.txt" 'vipmta_dkim_messages_total{module="dkim",outcome="signed",domain="example.test",algorithm="rsa-sha256"} 6'
vt_assert_file_contains "signed with Ed25519" "$VT_DIR/scrape.txt" 'vipmta_dkim_messages_total{module="dkim",outcome="signed",domain="example.test",algorithm="ed25519-sha256"} 6'
vt_assert_file_contains "skipped" "$VT_DIR/scrape.txt" 'vipmta_dkim_messages_total{module="dkim",outcome="skipped",domain="",algorithm=""} 2'
vt_assert_file_contains "announced" "$VT_DIR/scrape.txt" '# TYPE vipmta_dkim_messages_total counter'

vt_log "a reload swaps the keys: the next message is signed with the new selector"
dk_config "[{\"domain\": \"example.test\", \"selector\": \"r2\", \"file\": \"$KEYS/r2.pem\"}]" \
    "\"fallback_domain\": \"esp.test\", \"canonicalization\": \"simple/simple\""
"$VT_PYTHON" - "$DL_CONF" "$KEYS" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["modules"][0]["options"]["keys"].append({"domain": "esp.test", "selector": "esp", "file": sys.argv[2] + "/esp.pem"})
json.dump(c, open(sys.argv[1], "w"), indent=2)
EOF
vt_signal_daemon HUP
vt_wait_until 20 grep -q 'reloaded: new keys and options apply' "$VT_DAEMON_LOG" || vt_fail "no reload"
cp "$VT_DIR/plain.txt" "$VT_DIR/after.txt"
dk_send after "$VT_DIR/after.txt"
dk_verify after 1 || vt_fail "after the reload: $(cat "$VT_DIR/verify.after.out")"
vt_assert_eq "the new key, simple/simple" "pass d=example.test s=r2 a=rsa-sha256" "$(cat "$VT_DIR/verify.after.out")"
vt_assert_eq "c=simple/simple" 1 "$(grep -c 'c=simple/simple' "$(dk_eml after)")"
dk_send fallback "$VT_DIR/nokey.txt" someone@customer.test
dk_verify fallback 1 || vt_fail "fallback: $(cat "$VT_DIR/verify.fallback.out")"
vt_assert_eq "the fallback domain signs" "pass d=esp.test s=esp a=rsa-sha256" "$(cat "$VT_DIR/verify.fallback.out")"

vt_log "a reload with a bad key is refused, naming the file; the keys in force stay"
cp "$KEYS/r1.pem" "$KEYS/open.pem"
chmod 644 "$KEYS/open.pem"
cp "$DL_CONF" "$VT_DIR/good.json"
sed "s|$KEYS/r2.pem|$KEYS/open.pem|" "$VT_DIR/good.json" >"$DL_CONF"
vt_signal_daemon HUP
vt_wait_until 20 grep -q "open.pem: permissions: expected no access for group or others, found mode 0644" "$VT_DAEMON_LOG" ||
    vt_fail "the bad key was not reported"
dk_send stay "$VT_DIR/plain.txt"
dk_verify stay 1 || vt_fail "after a refused reload: $(cat "$VT_DIR/verify.stay.out")"
vt_assert_eq "still the r2 key" "pass d=example.test s=r2 a=rsa-sha256" "$(cat "$VT_DIR/verify.stay.out")"

vt_stop_daemon || vt_fail "the daemon did not stop cleanly"
exit 0
