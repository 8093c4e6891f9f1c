#!/bin/sh
# reload_memory.sh: 300 reloads of a config over 150 KB while mail flows: every message delivered, and the daemon's resident memory grows by less than 10 MB (a replaced config is freed when its last holder lets go).
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
[ -z "${VT_DAEMON_WRAPPER:-}" ] || vt_skip "resident memory under $VT_DAEMON_WRAPPER says nothing about the daemon's own"
RELOADS=${RELOADS:-300}
# ASan keeps freed memory in quarantine (256 MB by default): keep it small, so
# that resident memory reflects what the daemon holds
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
export ASAN_OPTIONS

SINK=$(vt_free_port)
vt_start_sink sink "$SINK"
dl_config "{\"routes\": {\"*\": \"127.0.0.1:$SINK\"}, \"log_level\": \"notice\"}"

# big_config N: the test's config with 2000 domain entries (over 150 KB); N
# changes one value, so each reload applies a change
big_config() {
    "$VT_PYTHON" - "$DL_CONF" "$1" <<'EOF'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    cfg = json.load(f)
cfg["domains"] = {"*": {"retry_schedule": [1]}}
for i in range(2000):
    cfg["domains"]["d%04d.example" % i] = {
        "max_connections_per_binding": 1 + (i + n) % 8, "retry_schedule": [60, 300, 900, 3600],
        "messages_per_connection": 50}
with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
EOF
}
big_config 0
size=$(wc -c <"$DL_CONF")
[ "$size" -ge 153600 ] || vt_error "the config is only $size bytes"
vt_start_daemon "$DL_CONF"

rss_kb() {
    sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$VT_DAEMON_PID/status"
}

# mail flows the whole time: a client sends until told to stop, 10 messages a session
"$VT_PYTHON" - "$DL_PORT" "$VT_DIR/stop" "$VT_DIR/sent" <<'EOF' &
import os, smtplib, sys, time
port, stop, sent = int(sys.argv[1]), sys.argv[2], sys.argv[3]
n = 0
while not os.path.exists(stop):
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
    for _ in range(10):
        n += 1
        s.sendmail("a@src.test", ["u%d@flow.test" % n],
                   b"Subject: flow %d\r\n\r\nmail during reloads\r\n" % n)
    s.quit()
    with open(sent + ".tmp", "w") as f:
        f.write("%d\n" % n)
    os.replace(sent + ".tmp", sent)
    time.sleep(0.05)
EOF
CLIENT=$!
vt_on_exit "kill $CLIENT 2>/dev/null"
vt_wait_until 30 test -s "$VT_DIR/sent" || vt_fail "the client could not send"

# warm up (allocator pools, the first reload's module and route state), then measure
for i in 1 2 3 4 5 6 7 8 9 10; do
    big_config "$i"
    vt_signal_daemon HUP
    vt_wait_until 20 sh -c "[ \$(grep -c 'reload: applied' '$VT_DAEMON_LOG') -ge $i ]" ||
        vt_fail "warm-up reload $i was not applied"
done
before=$(rss_kb)
vt_log "resident after 10 reloads: $before kB; now $RELOADS reloads of $size bytes"
i=10
end=$((10 + RELOADS))
while [ $i -lt $end ]; do
    i=$((i + 1))
    big_config "$i"
    vt_signal_daemon HUP
    vt_wait_until 20 sh -c "[ \$(grep -c 'reload: applied' '$VT_DAEMON_LOG') -ge $i ]" ||
        vt_fail "reload $i was not applied: $(grep 'reload' "$VT_DAEMON_LOG" | tail -3)"
done
after=$(rss_kb)
grew=$((after - before))
vt_log "resident after $RELOADS more reloads: $after kB (grew by $grew kB)"
[ "$grew" -lt 10240 ] || vt_fail "resident memory grew by $grew kB over $RELOADS reloads (limit 10240 kB)"

touch "$VT_DIR/stop"
wait "$CLIENT" || vt_fail "the client failed: a message was refused during the reloads"
sent=$(cat "$VT_DIR/sent")
vt_log "$sent messages sent during the reloads"
vt_sink_wait sink "$sent" 60 message >/dev/null ||
    vt_fail "only $(vt_sink_count sink message) of $sent messages reached the sink"
vt_assert_eq "messages at the sink" "$sent" "$(vt_sink_count sink message)"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
