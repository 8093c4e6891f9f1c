#!/bin/sh
# accept_crash.sh: kill -9 during a burst of injections; after restart every message that got 250 is spooled exactly once, nothing half-present.
. "$VIPMTA_TOP_SRCDIR/t/integration/accept_lib.sh"

vt_init
acc_pyclient
PORT=$(vt_free_port)
acc_config "$VT_TMP/vipmta.json" "$PORT"
vt_start_daemon "$VT_TMP/vipmta.json"

# 8 parallel clients, each pipelining messages with unique X-Test-Id headers
# until the connection breaks; an id is written to acked.txt only after its 250.
cat >"$VT_TMP/burst.py" <<'EOF'
import sys, threading, socket
from accsmtp import Client, message
port, acked_path, started_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock = threading.Lock()
acked = open(acked_path, "a")
count = [0]

def worker(n):
    k = 0
    try:
        c = Client(port, timeout=30)
        c.ehlo()
        while True:
            k += 1
            tid = "crash-%d-%d" % (n, k)
            c.send("MAIL FROM:<burst@accept.test>\r\nRCPT TO:<r%d@example.com>\r\nDATA\r\n" % k)
            if [c.reply()[0] for _ in range(3)] != [250, 250, 354]:
                return
            c.send(message(tid) + ".\r\n")
            r = c.reply()
            if r[0] != 250:
                return
            with lock:
                acked.write(tid + "\n")
                acked.flush()
                count[0] += 1
                if count[0] == 40:
                    open(started_path, "w").close()
    except (OSError, ValueError):
        return

threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
EOF
"$VT_PYTHON" "$VT_TMP/burst.py" "$PORT" "$VT_TMP/acked.txt" "$VT_TMP/started" >"$VT_TMP/burst.out" 2>&1 &
burst=$!
vt_wait_until 60 test -f "$VT_TMP/started" || vt_fail "the burst did not get going: $(cat "$VT_TMP/burst.out")"
sleep 0.3
vt_kill_daemon
wait "$burst"
acked=$(wc -l <"$VT_TMP/acked.txt")
[ "$acked" -ge 40 ] || vt_fail "only $acked messages acknowledged before the kill"

vt_start_daemon "$VT_TMP/vipmta.json"
acc_spool_check
"$VT_PYTHON" - "$VT_TMP/spool/queue" "$VT_TMP/acked.txt" <<'EOF' || vt_fail "spool does not match the acknowledged messages"
import sys, os, glob, collections
q, acked_path = sys.argv[1], sys.argv[2]
seen = collections.Counter()
for path in glob.glob(os.path.join(q, "*.body")):
    head = open(path, "rb").read().split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line.startswith(b"X-Test-Id: "):
            seen[line[11:].decode()] += 1
acked = [l.strip() for l in open(acked_path) if l.strip()]
missing = [a for a in acked if seen[a] == 0]
dups = [a for a, n in seen.items() if n > 1]
if missing:
    print("FAIL: %d acknowledged messages missing after the crash, e.g. %s" % (len(missing), missing[:5]))
if dups:
    print("FAIL: messages spooled twice: %s" % dups[:5])
print("acknowledged %d, spooled %d (the difference committed but not yet answered at the kill)"
      % (len(acked), sum(seen.values())))
sys.exit(1 if missing or dups else 0)
EOF
vt_stop_daemon || vt_fail "the daemon did not stop cleanly after recovery"
acc_spool_check
exit 0
