#!/bin/sh
# reload_inflight.sh: an SMTP session and an outbound connection that started before a reload finish on the config they started with (hostname, SIZE, EHLO name); sessions and connections that start after it use the new one.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
SINK=$(vt_free_port)
# every reply of the sink waits 3 s: a delivery is still going on when the reload comes
mkdir -p "$VT_DIR/saved"
vt_start_sink sink "$SINK" --delay-ms 3000 --save-dir "$VT_DIR/saved"

# rf_config HOSTNAME SIZE
rf_config() {
    dl_config "{\"hostname\": \"$1\", \"smtp\": {\"max_message_size\": $2},
      \"routes\": {\"*\": \"127.0.0.1:$SINK\"}, \"domains\": {\"*\": {\"retry_schedule\": [1]}}}"
}
rf_config old.example 100000
vt_start_daemon "$DL_CONF"

# A session that says EHLO before the reload and again after it, then sends a
# message and QUITs: prints each EHLO's first line and SIZE, and the QUIT reply.
"$VT_PYTHON" - "$DL_PORT" "$VT_DIR/go" "$VT_DIR/session" <<'EOF' &
import os, smtplib, sys, time
port, go, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
lines = []
code, text = s.ehlo()
lines.append("before %s size=%s" % (text.decode().splitlines()[0], s.esmtp_features.get("size")))
open(out + ".ready", "w").write("ready\n")
end = time.time() + 30
while time.time() < end and not os.path.exists(go):
    time.sleep(0.05)
code, text = s.ehlo()
lines.append("after %s size=%s" % (text.decode().splitlines()[0], s.esmtp_features.get("size")))
s.sendmail("a@src.test", ["held@session.test"], b"Subject: open session\r\n\r\nbody\r\n")
code, text = s.docmd("QUIT")
lines.append("quit %d %s" % (code, text.decode()))
s.close()
open(out, "w").write("\n".join(lines) + "\n")
EOF
SESSION=$!
vt_wait_until 10 test -s "$VT_DIR/session.ready" || vt_fail "the session did not get its EHLO reply"

vt_log "a delivery under the old config is under way when the reload comes"
dl_send a@src.test first@deliver.test "first"
vt_wait_until 10 sh -c "[ \$(grep -c '\"event\": *\"connect\"' '$VT_DIR/sink.jsonl' 2>/dev/null || echo 0) -ge 1 ]" ||
    vt_fail "the first delivery did not connect to the sink"
# greeting at 3 s, the EHLO reply at 6 s (then the connection takes the
# message and sends MAIL): the reload comes at 7.5 s, before the reply to MAIL
sleep 7.5

rf_config new.example 200000
vt_signal_daemon HUP
vt_wait_until 20 grep -q "reload: applied" "$VT_DAEMON_LOG" || vt_fail "the reload was not applied"

vt_log "a new session sees the new config"
new=$("$VT_PYTHON" - "$DL_PORT" <<'EOF'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.test", timeout=30)
code, text = s.ehlo()
print("%s size=%s" % (text.decode().splitlines()[0], s.esmtp_features.get("size")))
s.quit()
EOF
)
vt_assert_eq "a session after the reload" "new.example size=200000" "$new"

vt_log "the session opened before the reload keeps its config to the end"
touch "$VT_DIR/go"
wait "$SESSION" || vt_fail "the open session failed"
vt_assert_eq "its EHLO before the reload" "before old.example size=100000" "$(sed -n 1p "$VT_DIR/session")"
vt_assert_eq "its EHLO after the reload" "after old.example size=100000" "$(sed -n 2p "$VT_DIR/session")"
vt_assert_eq "its QUIT reply" "quit 221 2.0.0 old.example closing connection" "$(sed -n 3p "$VT_DIR/session")"

vt_log "the delivery under way finishes on the old config; new work goes out on a new connection"
dl_send a@src.test second@deliver.test "second"
vt_sink_wait sink 3 60 message >/dev/null || vt_fail "not every message reached the sink: $(vt_sink_count sink message)"
vt_assert_eq "the first message's EHLO name (its connection started before the reload)" "old.example" \
    "$(vt_sink_get sink message helo subject first)"
vt_assert_eq "the second message's EHLO name" "new.example" "$(vt_sink_get sink message helo subject second)"
saved=$(vt_sink_get sink message file subject "open session")
grep -q "by old.example (vipmta)" "$saved" ||
    vt_fail "the open session's message does not say it was received by old.example: $(head -3 "$saved")"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
