#!/bin/sh
# accept_protocol.sh: no SMTP smuggling (a bare CR or LF never ends the data and never reaches a next hop; bare_line_ends "reject" refuses it), <Postmaster> from any client, SMTPUTF8 and 8-bit bodies carried to next hops that offer them and bounced (5.6.7, 5.6.3) where they do not.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
SINK=$(vt_free_port)
PLAIN=$(vt_free_port)
mkdir -p "$VT_DIR/mail"
vt_start_sink sink "$SINK" --save-dir "$VT_DIR/mail" --ehlo-ext PIPELINING,SIZE,8BITMIME,SMTPUTF8
# a next hop with neither 8BITMIME nor SMTPUTF8
vt_start_sink plain "$PLAIN" --ehlo-ext PIPELINING,SIZE
# pr_config EXTRA_SMTP: relay only from 127.0.0.2 (the tests connect from
# 127.0.0.1 unless they bind 127.0.0.2); plain.test goes to the plain sink
pr_config() {
    dl_config "{\"relay_from\": [\"127.0.0.2/32\"], \"relay_domains\": [\"dest.test\", \"plain.test\"],
      \"postmaster\": \"pm@admin.test\", \"smtp\": {${1:-}},
      \"routes\": {\"plain.test\": \"127.0.0.1:$PLAIN\", \"*\": \"127.0.0.1:$SINK\"},
      \"domains\": {\"*\": {\"retry_schedule\": [1]}}}"
}
pr_config
vt_start_daemon "$DL_CONF"

# raw_smtp FILE: sends the bytes of FILE (commands and data, CRLF included)
# to the daemon from 127.0.0.2 at once, prints every reply line
raw_smtp() {
    "$VT_PYTHON" - "$DL_PORT" "$1" <<'EOF'
import socket, sys, time
port, path = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.bind(("127.0.0.2", 0))
s.connect(("127.0.0.1", port))
s.settimeout(10)
data = open(path, "rb").read()
s.recv(4096)
s.sendall(data)
out = b""
try:
    while not out.endswith(b"221 2.0.0 mta.deliver.test closing connection\r\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
except socket.timeout:
    pass
sys.stdout.write(out.decode("utf-8", "replace").replace("\r", ""))
EOF
}

vt_log "a bare CR before '.' CRLF does not end the data: one message, and no bare CR leaves vipmta"
printf 'EHLO client.test\r\nMAIL FROM:<a@src.test>\r\nRCPT TO:<u@dest.test>\r\nDATA\r\nSubject: cr smuggle\r\n\r\nline one\r.\r\nMAIL FROM:<evil@forged.test>\r\nRCPT TO:<victim@dest.test>\r\nDATA\r\nSubject: forged\r\n\r\nforged\r\n.\r\nQUIT\r\n' >"$VT_DIR/cr.in"
out=$(raw_smtp "$VT_DIR/cr.in")
vt_assert_eq "250s for the message (one, not two)" 1 "$(printf '%s\n' "$out" | grep -c '^250 2.0.0 Ok: queued as')"
vt_sink_wait sink 1 30 message subject "cr smuggle" >/dev/null || vt_fail "the message did not arrive"
vt_assert_eq "bare CRs and LFs the next hop saw" 0 "$(vt_sink_get sink message bare_cr_lf subject "cr smuggle")"
vt_assert_eq "recipients of the one message" '["u@dest.test"]' "$(vt_sink_get sink message rcpts subject "cr smuggle")"
vt_assert_eq "messages with the forged subject" 0 "$(vt_sink_count sink message subject forged)"
saved=$(vt_sink_get sink message file subject "cr smuggle")
grep -q "^MAIL FROM:<evil@forged.test>" "$saved" || vt_fail "the forged commands are not the message's text: $(cat "$saved")"

vt_log "a bare LF and LF . CRLF: not the end either; the line ends go on as CRLF"
printf 'EHLO client.test\r\nMAIL FROM:<a@src.test>\r\nRCPT TO:<u@dest.test>\r\nDATA\r\nSubject: lf smuggle\r\n\r\nline one\n.\r\nMAIL FROM:<evil@forged.test>\r\n.\r\nQUIT\r\n' >"$VT_DIR/lf.in"
out=$(raw_smtp "$VT_DIR/lf.in")
vt_assert_eq "250s (one message)" 1 "$(printf '%s\n' "$out" | grep -c '^250 2.0.0 Ok: queued as')"
vt_sink_wait sink 1 30 message subject "lf smuggle" >/dev/null || vt_fail "the message did not arrive"
vt_assert_eq "bare line ends the next hop saw" 0 "$(vt_sink_get sink message bare_cr_lf subject "lf smuggle")"

vt_log "<Postmaster> without a domain: accepted from a client that may not relay, delivered to the postmaster address"
"$VT_PYTHON" - "$DL_PORT" >"$VT_DIR/pm.out" <<'EOF' || vt_fail "RCPT TO:<Postmaster> was refused: $(cat "$VT_DIR/pm.out")"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="outsider.test", timeout=30)
s.ehlo()
code, text = s.docmd("MAIL FROM:<someone@outside.test>")
assert code == 250, text
code, text = s.docmd("RCPT TO:<Postmaster>")
print(code, text.decode())
assert code == 250, text
code, text = s.docmd("RCPT TO:<other@elsewhere.test>")
print(code, text.decode())
assert code == 554, text   # an ordinary address still needs relaying
s.data(b"Subject: to the postmaster\r\n\r\nhello\r\n")
s.quit()
EOF
vt_sink_wait sink 1 30 message subject "to the postmaster" >/dev/null || vt_fail "the postmaster message did not arrive"
vt_assert_eq "its recipient" '["pm@admin.test"]' "$(vt_sink_get sink message rcpts subject "to the postmaster")"

# send FROM TO SUBJECT BODY_BYTES [SMTPUTF8]: one message from 127.0.0.2
send_raw() {
    "$VT_PYTHON" - "$DL_PORT" "$@" <<'EOF' || vt_fail "send $*: refused"
import smtplib, socket, sys
port, sender, rcpt, subject, body = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
utf8 = len(sys.argv) > 6
s = smtplib.SMTP(local_hostname="client.test", timeout=30, source_address=("127.0.0.2", 0))
s.connect("127.0.0.1", port)
s.ehlo()
opts = ["SMTPUTF8"] if utf8 else []
msg = ("Subject: %s\r\n\r\n%s\r\n" % (subject, body)).encode("utf-8")
s.sendmail(sender, [rcpt], msg, mail_options=opts)
s.quit()
EOF
}

CAFE=$(printf 'caf\303\251')
JUERGEN=$(printf 'j\303\274rgen')
vt_log "8-bit body: BODY=8BITMIME where offered; bounced with 5.6.3 where not (no conversion)"
send_raw a@src.test u@dest.test "eight bit" "$CAFE"
vt_sink_wait sink 1 30 message subject "eight bit" >/dev/null || vt_fail "the 8-bit message did not arrive"
vt_assert_match "its MAIL parameters" '*"BODY=8BITMIME"*' "$(vt_sink_get sink message mail_params subject "eight bit")"
send_raw a@src.test u@dest.test "seven bit" "plain"
vt_sink_wait sink 1 30 message subject "seven bit" >/dev/null || vt_fail "the 7-bit message did not arrive"
vt_assert_match "a 7-bit message's MAIL parameters (no BODY)" '[[]"SIZE=*"[]]' "$(vt_sink_get sink message mail_params subject "seven bit")"
send_raw a@src.test u@plain.test "eight bit plain" "$CAFE"
dl_wait 1 30 outcome bounced rcpt u@plain.test || vt_fail "the 8-bit message to a next hop without 8BITMIME did not bounce"
vt_assert_match "the bounce's reason" "554 5.6.3 the message has 8-bit content and 127.0.0.1:$PLAIN does not offer 8BITMIME*" \
    "$(dl_get reply outcome bounced rcpt u@plain.test)"
vt_sink_wait sink 1 30 message rcpts a@src.test >/dev/null || vt_fail "no DSN reached the sender"

vt_log "SMTPUTF8: passed on where offered; an internationalized address bounces with 5.6.7 where not"
send_raw a@src.test "$JUERGEN@dest.test" "utf8 ok" "hi" smtputf8
vt_sink_wait sink 1 30 message subject "utf8 ok" >/dev/null || vt_fail "the SMTPUTF8 message did not arrive"
vt_assert_match "its MAIL parameters" '*"SMTPUTF8"*' "$(vt_sink_get sink message mail_params subject "utf8 ok")"
send_raw a@src.test "$JUERGEN@plain.test" "utf8 plain" "hi" smtputf8
dl_wait 1 30 outcome bounced rcpt "$JUERGEN@plain.test" || vt_fail "the non-ASCII recipient did not bounce"
vt_assert_match "the bounce's reason" "553 5.6.7 the recipient <$JUERGEN@plain.test> is not ASCII*" \
    "$(dl_get reply outcome bounced rcpt "$JUERGEN@plain.test")"
send_raw a@src.test ascii@plain.test "utf8 downgraded" "hi" smtputf8
vt_sink_wait plain 1 30 message subject "utf8 downgraded" >/dev/null || vt_fail "the ASCII-only SMTPUTF8 message was not downgraded"

vt_log "bare_line_ends \"reject\": such a message is refused with 554 5.6.0"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
pr_config '"bare_line_ends": "reject"'
vt_start_daemon "$DL_CONF"
out=$(raw_smtp "$VT_DIR/cr.in")
vt_assert_match "the refusal" "*554 5.6.0 Error: message rejected: a line ends with a bare CR or LF; end every line with CRLF*" "$out"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
