#!/bin/sh
# shutdown_signals.sh: SIGTERM waits for a session in the middle of DATA (no new sessions meanwhile) and exits 0 once it is done; a second SIGTERM while it waits exits at once.
. "$VIPMTA_TOP_SRCDIR/t/integration/accept_lib.sh"

vt_init
PORT=$(vt_free_port)
acc_config "$VT_TMP/vipmta.json" "$PORT"

# hold.py PORT STATE_FILE: opens a session, starts DATA, writes "in-data" to
# STATE_FILE, then waits for "finish" in STATE_FILE.go to send the rest and
# the dot; writes the final reply to STATE_FILE.
cat >"$VT_TMP/hold.py" <<'PY'
import os, socket, sys, time
port, state = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=30)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline().decode()
        if len(line) < 4 or line[3] != "-":
            return line.strip()
reply()
for cmd in ("EHLO hold.test", "MAIL FROM:<hold@accept.test>", "RCPT TO:<r@example.com>", "DATA"):
    s.sendall((cmd + "\r\n").encode())
    r = reply()
s.sendall(b"Subject: held\r\n\r\nfirst half\r\n")
open(state, "w").write("in-data " + r + "\n")
while not os.path.exists(state + ".go"):
    time.sleep(0.05)
try:
    s.sendall(b"second half\r\n.\r\n")
    r = reply() or "closed"
except OSError as e:
    r = "error %s" % e
open(state, "a").write("final " + r + "\n")
PY

# hold_and_stop NAME: starts the daemon, holds a client in DATA (its state
# in $VT_TMP/NAME), sends SIGTERM and waits until the daemon is stopping with
# that one session open; sets pid and client.
hold_and_stop() {
    vt_start_daemon "$VT_TMP/vipmta.json"
    "$VT_PYTHON" "$VT_TMP/hold.py" "$PORT" "$VT_TMP/$1" &
    client=$!
    vt_wait_until 10 grep -q "^in-data 354" "$VT_TMP/$1" || vt_fail "$1: the client did not get into DATA"
    pid=$VT_DAEMON_PID
    stops=$(grep -c "stopping: no new sessions; 1 open" "$VT_DAEMON_LOG")
    kill -TERM "$pid"
    vt_wait_until 10 sh -c "[ \$(grep -c 'stopping: no new sessions; 1 open' '$VT_DAEMON_LOG') -gt $stops ]" ||
        vt_fail "$1: no 'stopping: no new sessions; 1 open' line after SIGTERM"
}

vt_log "SIGTERM while a session is in DATA: the daemon waits for it, then exits 0"
hold_and_stop hold1
sleep 1
vt__running "$pid" || vt_fail "the daemon exited with a session still in DATA"
"$VT_PYTHON" -c "import socket, sys
try:
    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2)
except OSError:
    sys.exit(0)
sys.exit(1)" "$PORT" || vt_fail "a new connection was accepted while stopping"
: >"$VT_TMP/hold1.go"
wait "$client"
vt_assert_match "the held session's final reply" "final 250 2.0.0 Ok: queued as *" "$(grep '^final' "$VT_TMP/hold1")"
vt__reap "$pid" 100 || vt_fail "the daemon did not exit after the session finished"
vt_assert_eq "exit status after SIGTERM" 0 "$VT__STATUS"
VT_DAEMON_PID=
vt_assert_eq "messages in the spool (the held one, acknowledged)" 1 "$(ls "$VT_TMP/spool/queue/"*.env | wc -l)"

vt_log "a second SIGTERM while the first one waits: exits at once"
hold_and_stop hold2
kill -TERM "$pid"
vt__reap "$pid" 30 || vt_fail "the daemon did not exit within 3 s of the second SIGTERM"
vt_assert_eq "exit status after the second SIGTERM" 1 "$VT__STATUS"
VT_DAEMON_PID=
vt_assert_file_contains "the log says why" "$VT_DAEMON_LOG" "second SIGTERM: exiting at once"
: >"$VT_TMP/hold2.go"
wait "$client"
case $(grep '^final' "$VT_TMP/hold2") in
    "final closed" | "final error"*) ;;
    *) vt_fail "the interrupted client got a reply: $(grep '^final' "$VT_TMP/hold2")" ;;
esac
vt_assert_eq "messages in the spool (still just the first)" 1 "$(ls "$VT_TMP/spool/queue/"*.env | wc -l)"
echo "PASS: shutdown_signals"
