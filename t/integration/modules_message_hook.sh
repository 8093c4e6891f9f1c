#!/bin/sh
# modules_message_hook.sh: the end-of-DATA message hooks in the daemon (t/modules/msghook.c): header fields added arrive at the sink in order, first, and survive a crash before delivery; a rejection and a deferral reach the client with the module's reply (or the default); a message suspended and resumed from a thread; a client gone while suspended, a deadline, a reload and a stop leave nothing in the spool.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/t/modules
[ -e "$MODDIR/msghook.la" ] || vt_skip "the test module msghook is not built in $MODDIR (make check builds it)"
SINK=$(vt_free_port)
mkdir -p "$VT_DIR/eml"

# mh_config THREAD_MS DATA_DEADLINE: the daemon's config
mh_config() {
    dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}},
  \"binding_groups\": {\"pool\": [\"vip1\"]}, \"default_binding_group\": \"pool\",
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [1]}},
  \"smtp\": {\"data_deadline\": $2},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"msghook\", \"debug_level\": \"info\",
    \"options\": {\"thread_ms\": $1,
      \"add\": [[\"X-First\", \"one\"], [\"X-Second\", \"two\\r\\n\\tfolded\"], [\"X-Third\", \" three\"]]}}]
}"
}

# mh_send SUBJECT [close]: one message over SMTP; prints the reply to its data
# ("close": the client leaves right after the final dot, printing nothing).
mh_send() {
    "$VT_PYTHON" - "$DL_PORT" "$1" "${2:-}" <<'EOF'
import socket, sys
port, subject, close = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "close"
s = socket.create_connection(("127.0.0.1", port), timeout=30)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline().decode()
        if line[3:4] != "-":
            return line.strip()
reply()
for cmd in ("EHLO client.test", "MAIL FROM:<a@src.test>", "RCPT TO:<b@example.test>",
            "RCPT TO:<c@example.test>", "DATA"):
    s.sendall((cmd + "\r\n").encode())
    reply()
s.sendall(("From: a@src.test\r\nSubject: %s\r\nX-Test-Id: %s\r\n\r\nHello.\r\n..dot\r\n.\r\n"
           % (subject, subject)).encode())
if close:
    s.close()
    sys.exit(0)
print(reply())
s.sendall(b"QUIT\r\n")
EOF
}

# mh_spool_files: messages in the spool (their .body files)
mh_spool_files() {
    ls "$VT_DIR/spool/queue" 2>/dev/null | grep -c '\.body$'
}
mh_spool_empty() {
    [ "$(mh_spool_files)" -eq 0 ]
}
# mh_lines_ge COUNT TEXT: the daemon's log has COUNT lines with TEXT or more
mh_lines_ge() {
    [ "$(grep -c "$2" "$VT_DAEMON_LOG")" -ge "$1" ]
}

mh_config 200 600
vt_start_sink sink "$SINK" --save-dir "$VT_DIR/eml"
vt_start_daemon "$DL_CONF"

vt_log "a message the hooks let through: the fields added first, in order, before Received:"
vt_assert_eq "reply" "250" "$(mh_send plain | cut -c1-3)"
vt_sink_wait sink 1 30 message headers.x-test-id plain >/dev/null || vt_fail "plain not delivered"
eml=$(vt_sink_get sink message file headers.x-test-id plain)
vt_assert_eq "the first lines at the sink" "X-First: one
X-Second: two
	folded
X-Third: three
X-Msghook-Final: seen 3" "$(head -n 5 "$eml" | tr -d '\r')"
vt_assert_match "then the core's Received:" "Received: from client.test*" "$(sed -n 6p "$eml")"
vt_assert_eq "CRLF line ends" 0 "$(head -n 5 "$eml" | grep -vc "$(printf '\r')\$")"
vt_assert_eq "the dot-stuffed line arrives unstuffed" ".dot" "$(grep '^\.' "$eml" | tr -d '\r')"
size=$(wc -c <"$eml")
vt_assert_eq "SIZE counts the fields" "$size" "$(vt_sink_get sink message size headers.x-test-id plain)"
vt_assert_file_contains "the module saw the message" "$VT_DAEMON_LOG" \
    "[msghook] final_validation2 id="
vt_assert_match "what it saw" "*from=<a@src.test> rcpts=2 first=<b@example.test> client=127.0.0.1 helo=client.test binding=vip1 size=* subject=plain" \
    "$(grep 'final_validation2 .*subject=plain' "$VT_DAEMON_LOG" | head -n 1)"

vt_log "rejections and a deferral reach the client; nothing is spooled"
vt_assert_eq "reject" "550 5.7.1 msghook says no" "$(mh_send reject)"
vt_assert_eq "reject without a reply" "550 5.7.1 Error: message rejected by policy" "$(mh_send reject-default)"
vt_assert_eq "defer" "451 4.7.1 msghook says later" "$(mh_send defer)"
vt_assert_eq "a reply of the wrong class is ignored" "550 5.7.1 Error: message rejected by policy" "$(mh_send bad-reply)"
vt_assert_file_contains "the rejection names the module" "$VT_DAEMON_LOG" \
    'message rejected by module "msghook": 550 5.7.1 msghook says no'
vt_assert_file_contains "the deferral names the module" "$VT_DAEMON_LOG" \
    'message deferred by module "msghook": 451 4.7.1 msghook says later'
vt_assert_file_contains "the ignored reply is logged" "$VT_DAEMON_LOG" \
    'module "msghook": reply "451 4.7.1 not a rejection" ignored'

vt_log "suspended messages resumed from a thread"
vt_assert_eq "suspend" "250" "$(mh_send suspend | cut -c1-3)"
vt_assert_eq "suspend-final" "250" "$(mh_send suspend-final | cut -c1-3)"
vt_assert_eq "suspend-reject" "554 5.7.1 the thread says no" "$(mh_send suspend-reject)"
vt_sink_wait sink 1 30 message headers.x-test-id suspend >/dev/null || vt_fail "suspend not delivered"
vt_sink_wait sink 1 30 message headers.x-test-id suspend-final >/dev/null || vt_fail "suspend-final not delivered"
eml=$(vt_sink_get sink message file headers.x-test-id suspend)
vt_assert_match "the thread read the whole message and added its field after the others" \
    "X-Third: three X-Msghook-Thread: read * octets X-Msghook-Final: seen 4" \
    "$(sed -n '4,6p' "$eml" | tr -d '\r' | tr '\n' ' ' | sed 's/ $//')"
vt_assert_eq "suspend-final delivered once" 1 "$(vt_sink_count sink message headers.x-test-id suspend-final)"
vt_wait_until 10 mh_spool_empty || vt_fail "the spool still has $(mh_spool_files) messages"
vt_assert_eq "refused messages at the sink" 0 "$(vt_sink_count sink message headers.x-test-id~ '*reject*')"

vt_log "the fields survive a crash before delivery"
vt_stop_sink sink
vt_assert_eq "accepted" "250" "$(mh_send crash | cut -c1-3)"
vt_wait_until 20 grep -q '"outcome": *"deferred"' "$DL_LOG" || vt_fail "no deferral while the sink is down"
id=$(ls "$VT_DIR/spool/queue" | sed -n 's/\.env$//p' | head -n 1)
vt_assert_eq "the envelope's header lines" "header X-First: one
header X-Second: two%0d%0a%09folded
header X-Third: three
header X-Msghook-Final: seen 3" "$(grep '^header ' "$VT_DIR/spool/queue/$id.env")"
vt_kill_daemon
vt_start_sink sink "$SINK" --save-dir "$VT_DIR/eml"
vt_start_daemon "$DL_CONF"
vt_sink_wait sink 1 30 message headers.x-test-id crash >/dev/null || vt_fail "not delivered after the restart"
eml=$(vt_sink_get sink message file headers.x-test-id crash)
vt_assert_eq "the fields after the restart" "X-First: one
X-Second: two
	folded
X-Third: three
X-Msghook-Final: seen 3" "$(head -n 5 "$eml" | tr -d '\r')"
vt_stop_daemon || vt_fail "the daemon did not stop cleanly"

vt_log "a client gone while suspended: never acknowledged, nothing spooled"
mh_config 2000 3
vt_start_daemon "$DL_CONF"
mh_send "suspend gone" close
vt_wait_until 10 grep -q 'while module "msghook" holds the message (suspended): never acknowledged' "$VT_DAEMON_LOG" ||
    vt_fail "no line for the client gone"
vt_wait_until 10 grep -q 'message discarded, nothing spooled' "$VT_DAEMON_LOG" ||
    vt_fail "the message was not discarded once resumed"
vt_assert_eq "spool" 0 "$(mh_spool_files)"

vt_log "a message not resumed within data_deadline: 451 4.3.0, discarded once resumed"
mh_config 5000 2
vt_signal_daemon HUP
vt_wait_until 20 grep -q 'reload: applied' "$VT_DAEMON_LOG" || vt_fail "the reload was not applied"
start=$(date +%s)
vt_assert_eq "deadline" "451 4.3.0 Error: message processing timed out, try again later" "$(mh_send "suspend late")"
took=$(($(date +%s) - start))
[ "$took" -le 4 ] || vt_fail "the 451 came after $took s, data_deadline is 2 s"
vt_assert_file_contains "the deadline names the module" "$VT_DAEMON_LOG" \
    'module "msghook" did not resume the message within data_deadline 2s: 451 4.3.0'
vt_wait_until 10 mh_lines_ge 2 'message discarded, nothing spooled' ||
    vt_fail "the late message was not discarded"
vt_assert_eq "spool" 0 "$(mh_spool_files)"

vt_log "a reload while a message is suspended: 451 after the wait"
mh_config 8000 600
vt_signal_daemon HUP
vt_wait_until 20 mh_lines_ge 2 'reload: applied' || vt_fail "the reload was not applied"
mh_send "suspend reload" >"$VT_DIR/reload.reply" &
client=$!
sleep 1
vt_signal_daemon HUP
wait "$client"
vt_assert_eq "reload" "451 4.3.0 Error: message processing interrupted, try again later" "$(cat "$VT_DIR/reload.reply")"
vt_assert_file_contains "the reload's line" "$VT_DAEMON_LOG" \
    'configuration reload while module "msghook" holds the message (suspended, waited 5s): 451 4.3.0'
vt_wait_until 20 mh_lines_ge 3 'reload: applied' || vt_fail "the reload was not applied"

vt_log "a stop while a message is suspended: 451 4.3.2, then a clean exit"
mh_send "suspend stop" >"$VT_DIR/stop.reply" &
client=$!
sleep 1
vt_stop_daemon 20 || vt_fail "the daemon did not stop cleanly"
wait "$client"
vt_assert_eq "stop" "451 4.3.2 Error: service shutting down, try again later" "$(cat "$VT_DIR/stop.reply")"
vt_assert_eq "spool" 0 "$(mh_spool_files)"
for t in "suspend gone" "suspend late" "suspend reload" "suspend stop"; do
    vt_assert_eq "\"$t\" at the sink" 0 "$(vt_sink_count sink message headers.x-test-id "$t")"
done
exit 0
