#!/bin/sh
# limits_deadlines.sh: a DATA phase fed a byte a second is cut at data_deadline; idle sessions cannot hold every slot (busy_command_timeout once busy); max_outbound_connections caps the connections open at once and the mail still all goes.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
SINK=$(vt_free_port)
# every reply waits 1 s: connections stay open long enough to count them
vt_start_sink sink "$SINK" --delay-ms 1000
dl_config "{\"smtp\": {\"data_deadline\": 3, \"data_timeout\": 2, \"max_sessions\": 5,
    \"busy_percent\": 60, \"busy_command_timeout\": 1},
  \"max_outbound_connections\": 2,
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"}, \"domains\": {\"*\": {\"retry_schedule\": [1]}}}"
vt_start_daemon "$DL_CONF"

vt_log "DATA fed one byte a second: cut after data_deadline (3 s), though each read came within data_timeout (2 s)"
out=$("$VT_PYTHON" - "$DL_PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
f = s.makefile("rb")
f.readline()
for cmd in (b"EHLO slow.test", b"MAIL FROM:<a@src.test>", b"RCPT TO:<u@dest.test>", b"DATA"):
    s.sendall(cmd + b"\r\n")
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
start = time.time()
reply = b""
for i in range(20):
    try:
        s.sendall(b"x")
    except OSError:
        break
    s.settimeout(1.0)
    try:
        reply = s.recv(4096)
        if reply:
            break
    except socket.timeout:
        pass
print("%.0f %s" % (time.time() - start, reply.decode().strip()))
PY
)
vt_assert_match "cut with 421 after about 3 s" "[345] 421 4.4.2 *timeout exceeded*" "$out"
vt_assert_file_contains "the log says which limit" "$VT_DAEMON_LOG" "DATA not over within data_deadline 3s, message dropped: 421 4.4.2"

vt_log "three idle sessions of max_sessions 5 (busy_percent 60): busy; idle ones get busy_command_timeout (1 s)"
"$VT_PYTHON" - "$DL_PORT" >"$VT_DIR/busy.out" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
socks = []
for i in range(3):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.recv(4096)
    socks.append(s)
start = time.time()
for s in socks:
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print("%.0f %s" % (time.time() - start, data.decode().strip()))
PY
vt_assert_eq "sessions closed by the busy timeout" 3 "$(grep -c '421 4.4.2' "$VT_DIR/busy.out")"
vt_assert_eq "closed within 3 s (not command_timeout's 300)" 3 "$(awk '$1 <= 3' "$VT_DIR/busy.out" | grep -c .)"
vt_assert_file_contains "the busy warning" "$VT_DAEMON_LOG" "busy: 3 sessions of max_sessions 5: clients waiting to send a command get busy_command_timeout 1s"
vt_assert_file_contains "the timeout line" "$VT_DAEMON_LOG" "timeout waiting for a command (busy_command_timeout 1s): 421 4.4.2"

vt_log "max_outbound_connections 2: 6 domains' mail goes out two connections at a time, all of it"
for d in a b c d e f; do
    dl_send sender@src.test "u@$d.test" "to $d"
done
vt_sink_wait sink 6 90 message >/dev/null || vt_fail "only $(vt_sink_count sink message) of 6 messages arrived"
peak=$("$VT_PYTHON" - "$VT_DIR/sink.jsonl" <<'PY'
import json, sys
open_now = peak = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "connect":
        open_now += 1
        peak = max(peak, open_now)
    elif e["event"] == "disconnect":
        open_now -= 1
print(peak)
PY
)
vt_assert_match "connections open at once, at most 2" "[12]" "$peak"
vt_assert_file_contains "the cap's warning" "$VT_DAEMON_LOG" "max_outbound_connections 2 reached: new connections wait"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
