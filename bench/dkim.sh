#!/bin/sh
# dkim.sh: the dkim module's cost, all in one run: relay throughput (smtp-source -> vipmta -> smtp-sink, 1 KiB, 20 sessions) without signing, with RSA-2048, with Ed25519 and with both; CPU microseconds per signature (the daemon's, and the signer's alone); end-of-DATA-to-250 latency with and without signing, idle and under load.
#
# One command: bench/dkim.sh   (as root: smtp-sink drops to nobody)
# Environment:
#   BENCH_MESSAGES   messages per run (default 10000)
#   BENCH_SIZE       message size in bytes (default 1024)
#   BENCH_SESSIONS   parallel smtp-source sessions (default 20)
#   BENCH_TARGETS    runs, in order (default "none rsa ed25519 dual")
#   BENCH_PROBES     latency probes per phase (default 200): messages sent one at a
#                    time on one session, timed from the last byte of DATA (the
#                    final dot) to the reply; once while smtp-source loads the
#                    daemon, once idle after it
#   BENCH_WORKERS    the module's signing threads (default: the module's, = CPUs)
#   BENCH_GAP        seconds of rest before each run, after a sync (default 5)
#   BENCH_TIMEOUT, BENCH_STALL, BENCH_TMPDIR, BENCH_KEEP  as in bench/e2e.sh
#   VIPMTA           the daemon (default $top/_build/core/vipmta; use a build without
#                    sanitizers: mkdir _bench && cd _bench && ../configure && make);
#                    the dkim module is taken from that build's modules/
set -u

bench_dir=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$bench_dir/.." && pwd)
. "$bench_dir/common.sh"
. "$bench_dir/vipmta.sh"

N=${BENCH_MESSAGES:-10000}
SIZE=${BENCH_SIZE:-1024}
TARGETS=${BENCH_TARGETS:-"none rsa ed25519 dual"}
PROBES=${BENCH_PROBES:-200}
BENCH_GAP=${BENCH_GAP:-5}
VM_BINDS="127.0.0.2 127.0.0.3"
MODDIR=$(cd "$(dirname "$VIPMTA")/../modules" 2>/dev/null && pwd)

[ "$(id -u)" -eq 0 ] || bench_die "run as root (smtp-sink drops to nobody)"
bench_need_postfix
vm_usable || bench_die "$VM_WHY"
[ -e "$MODDIR/dkim.la" ] || bench_die "no dkim module in $MODDIR (build the tree of $VIPMTA)"
command -v openssl >/dev/null || bench_die "openssl is needed to make the keys"
root=$(bench_mktemp)
failed=0

cleanup() {
    vm_stop
    bench_kill_all
    if [ "${BENCH_KEEP:-0}" = 1 ]; then bench_log "bench: kept $root"; else rm -rf "$root"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$root/bin" "$root/keys"
SINKWATCH=$root/bin/sinkwatch
bench_cc "$bench_dir/sinkwatch.c" "$SINKWATCH"
${CC:-cc} -O2 -Wall -Wextra -D_GNU_SOURCE -I"$top/modules/dkim" -I"$top/core/include" \
    $(pkg-config --cflags opendkim) -o "$root/bin/dkim_sign" "$bench_dir/dkim_sign.c" \
    "$top/modules/dkim/dkimmod_signer.c" "$top/modules/dkim/dkimmod_keys.c" \
    $(pkg-config --libs opendkim) -lcrypto || bench_die "cannot compile dkim_sign.c"
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$root/keys/rsa.pem" 2>/dev/null &&
    openssl genpkey -algorithm ed25519 -out "$root/keys/ed.pem" && chmod 600 "$root/keys"/*.pem ||
    bench_die "openssl genpkey failed"

# keys_for TARGET: the module's keys list
keys_for() {
    rsa="{\"domain\": \"bench.test\", \"selector\": \"r\", \"file\": \"$root/keys/rsa.pem\"}"
    ed="{\"domain\": \"bench.test\", \"selector\": \"e\", \"file\": \"$root/keys/ed.pem\"}"
    case $1 in
        rsa) echo "[$rsa]" ;;
        ed25519) echo "[$ed]" ;;
        dual) echo "[$rsa, $ed]" ;;
    esac
}
sigs_per_message() { case $1 in none) echo 0 ;; dual) echo 2 ;; *) echo 1 ;; esac; }

# cpu_ticks PID: user + system clock ticks of the process so far
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# probe PORT COUNT OUT: COUNT messages one after the other on one session,
# each timed from the final dot to its reply; writes "p50 p99 max" (ms) to OUT
probe() {
    python3 - "$1" "$2" "$3" "$SIZE" <<'EOF'
import socket, sys, time
port, count, out, size = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.create_connection(("127.0.0.1", port), timeout=60)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("probe: connection closed")
        if line[3:4] != b"-":
            return line
reply()
s.sendall(b"EHLO probe.bench.test\r\n"); reply()
body = b"x" * 78 + b"\r\n"
msg = (b"From: probe@bench.test\r\nTo: b@example.test\r\nSubject: probe\r\n\r\n"
       + body * max(1, size // 80))
lat = []
for i in range(count):
    for cmd in (b"MAIL FROM:<probe@bench.test>", b"RCPT TO:<b@example.test>", b"DATA"):
        s.sendall(cmd + b"\r\n")
        r = reply()
    s.sendall(msg)
    t0 = time.perf_counter()
    s.sendall(b".\r\n")
    r = reply()
    lat.append((time.perf_counter() - t0) * 1000)
    if not r.startswith(b"250"):
        raise SystemExit("probe: %r" % r)
s.sendall(b"QUIT\r\n")
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
open(out, "w").write("%.2f %.2f %.2f\n" % (q(0.50), q(0.99), lat[-1]))
EOF
}

# run_one TARGET: sets R_RATE R_CPU_US R_LOAD R_IDLE R_NOTE
run_one() {
    local t=$1 d sinkport port t0 t1 c0 c1 deadline probe_pid total
    d=$root/$t
    mkdir -p "$d"
    R_RATE=n/a R_CPU_US=n/a R_LOAD="n/a n/a n/a" R_IDLE="n/a n/a n/a" R_NOTE=""
    total=$((N + 2 * PROBES))
    sinkport=$(bench_free_port)
    sink_start "$d" "$sinkport" "$((N + PROBES))"
    port=$(bench_free_port)
    if [ "$t" = none ]; then
        BENCH_VIPMTA_CONFIG_EXTRA="" \
            vm_config "$d/vipmta.json" "$port" "$d/spool" "127.0.0.1:$sinkport" "$VM_BINDS"
    else
        BENCH_VIPMTA_CONFIG_EXTRA="\"module_path\": [\"$MODDIR\"], \"modules\": [{\"name\": \"dkim\", \"options\": {\"keys\": $(keys_for "$t"), \"fallback_domain\": \"bench.test\"${BENCH_WORKERS:+, \"workers\": $BENCH_WORKERS}}}]" \
            vm_config "$d/vipmta.json" "$port" "$d/spool" "127.0.0.1:$sinkport" "$VM_BINDS"
    fi
    if ! vm_start "$d/vipmta.json" "$d/vipmta.log"; then
        sink_stop "$d"
        R_NOTE="vipmta did not start (log: $d/vipmta.log)"
        failed=1
        return 1
    fi
    c0=$(cpu_ticks "$VM_PID")
    t0=$(bench_now)
    probe "$port" "$PROBES" "$d/probe.load" &
    probe_pid=$!
    run_source "$port" "$N" "$SIZE" "$d/source"
    wait $probe_pid || R_NOTE="the probe under load failed"
    deadline=$(( $(date +%s) + BENCH_TIMEOUT ))
    if sink_wait "$d" "$deadline" "$VM_PID"; then
        t1=$(cat "$d/sink.reached")
        R_RATE=$(bench_rate "$((N + PROBES))" "$t0" "$t1")
    else
        R_NOTE="${R_NOTE:+$R_NOTE; }sink never reached $((N + PROBES)): $SINK_WHY"
    fi
    c1=$(cpu_ticks "$VM_PID")
    probe "$port" "$PROBES" "$d/probe.idle" || R_NOTE="${R_NOTE:+$R_NOTE; }the idle probe failed"
    sleep 1
    R_CPU_US=$(awk -v a="$c0" -v b="$c1" -v n="$((N + PROBES))" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.0f", (b - a) / hz * 1e6 / n }')
    R_LOAD=$(cat "$d/probe.load" 2>/dev/null || echo "n/a n/a n/a")
    R_IDLE=$(cat "$d/probe.idle" 2>/dev/null || echo "n/a n/a n/a")
    grep -q 'not signed' "$d/vipmta.log" && R_NOTE="${R_NOTE:+$R_NOTE; }some messages were not signed (log: $d/vipmta.log)"
    vm_stop
    sink_stop "$d"
    if [ "$SINK_COUNT" != "$total" ]; then
        bench_loud "$t: the sink received $SINK_COUNT messages, expected $total"
        failed=1
    fi
    [ "$SOURCE_COUNT" = "$N" ] || { R_NOTE="${R_NOTE:+$R_NOTE; }smtp-source completed $SOURCE_COUNT of $N"; failed=1; }
    return 0
}

echo "vipmta dkim bench: $N messages of $SIZE B per run, $BENCH_SESSIONS sessions, $PROBES latency probes per phase"
echo "host: $(nproc) CPUs, $(uname -r), load $(uptime | sed 's/.*load average: //'), temp dir $root"
echo "vipmta: $VIPMTA; libopendkim $(pkg-config --modversion opendkim); $(openssl version)"
echo
echo "the signer alone (one thread, the module's signer.c, 2000 signatures of a $SIZE B message):"
for k in rsa:rsa-sha256 ed:ed25519-sha256; do
    "$root/bin/dkim_sign" "$root/keys/${k%%:*}.pem" "${k#*:}" 2000 "$SIZE" || failed=1
done
echo
printf '%-8s %10s %8s %14s %14s %22s %22s\n' run "msgs/s" "vs none" "CPU us/msg" "+us/signature" "EOD->250 load p50/p99" "EOD->250 idle p50/p99"
cpu_none=""
rate_none=""
for t in $TARGETS; do
    sync
    sleep "$BENCH_GAP"
    run_one "$t"
    [ "$t" = none ] && { cpu_none=$R_CPU_US; rate_none=$R_RATE; }
    per_sig=n/a
    n_sigs=$(sigs_per_message "$t")
    if [ "$n_sigs" -gt 0 ] && [ -n "$cpu_none" ] && [ "$R_CPU_US" != n/a ]; then
        per_sig=$(awk -v a="$R_CPU_US" -v b="$cpu_none" -v s="$n_sigs" 'BEGIN { printf "%.0f", (a - b) / s }')
    fi
    set -- $R_LOAD
    load="$1/$2 ms"
    set -- $R_IDLE
    idle="$1/$2 ms"
    printf '%-8s %10s %8s %14s %14s %22s %22s%s\n' "$t" "$R_RATE" "$(bench_ratio "$R_RATE" "$rate_none")" \
        "$R_CPU_US" "$per_sig" "$load" "$idle" "${R_NOTE:+  [$R_NOTE]}"
done
echo
echo "msgs/s: messages at the sink (smtp-source's and the load probe's) / time from the start of"
echo "injection to the last arrival. CPU us/msg: the daemon's user+system CPU over the run / messages."
echo "+us/signature: (CPU us/msg - none's) / signatures per message. EOD->250: from the final dot"
echo "to the reply, p50/p99 over $PROBES messages sent one at a time on one session."
[ $failed = 0 ] || { bench_loud "a run failed or lost messages: see above"; exit 1; }
exit 0
