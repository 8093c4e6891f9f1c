#!/bin/sh
# e2e.sh: end-to-end bench: smtp-source -> (smtp-sink directly | Postfix | vipmta) -> smtp-sink, msgs/s side by side and ratios.
#
# One command: bench/e2e.sh   (as root: Postfix needs its accounts and setuid)
# Environment:
#   BENCH_MESSAGES   messages per run (default 20000; 2000 for a quick run)
#   BENCH_SIZES      message sizes in bytes (default "1024 20480")
#   BENCH_SESSIONS   parallel smtp-source sessions (default 20)
#   BENCH_TARGETS    which paths to run, in order (default "direct postfix vipmta")
#   BENCH_TIMEOUT    seconds one run may take before it is called a failure (default 600)
#   BENCH_STALL      seconds without a new message at the sink before a run is called stalled (60)
#   BENCH_SETTLE     seconds to keep the sink up after the last message, to catch duplicates (1)
#   BENCH_GAP        seconds of rest before each run, after a sync (default 20): a run
#                    must not pay for the previous one's writeback and process exits
#   BENCH_TMPDIR     where the temp dir goes (default /var/tmp; must be a disk, not tmpfs)
#   BENCH_KEEP=1     keep the temp dir (logs, configs, maillog, delivery log)
#   VIPMTA           the daemon binary (default $top/_build/core/vipmta)
#   BENCH_PF_EXTRA   extra Postfix main.cf settings, e.g. "in_flow_delay=0"
#   BENCH_VIPMTA_CONFIG_EXTRA, BENCH_VIPMTA_LOG_LEVEL  see bench/vipmta.sh
#   BENCH_STRACE_MESSAGES  messages of the separate short vipmta run under `strace -c -f`
#                    that counts system calls and syncs per relayed message (default 3000;
#                    0 skips it)
#
# Each run starts a fresh smtp-sink (counting with -c) and, for the relays, a
# fresh MTA instance with an empty spool. Time: from the start of injection
# to the arrival of the Nth message at the sink (stamped by sinkwatch as it
# happens). The sink's count must equal N; a shortfall or surplus is reported
# loudly. Source addresses of the relays' connections to the sink are sampled
# with ss(8) during the run and printed.
set -u

bench_dir=$(cd "$(dirname "$0")" && pwd)
. "$bench_dir/common.sh"
. "$bench_dir/postfix.sh"
. "$bench_dir/vipmta.sh"

N=${BENCH_MESSAGES:-20000}
SIZES=${BENCH_SIZES:-"1024 20480"}
TARGETS=${BENCH_TARGETS:-"direct postfix vipmta"}
BENCH_SETTLE=${BENCH_SETTLE:-1}
BENCH_GAP=${BENCH_GAP:-20}
BENCH_STRACE_MESSAGES=${BENCH_STRACE_MESSAGES:-3000}
PF_BIND=127.0.0.2
VM_BINDS="127.0.0.2 127.0.0.3"

[ "$(id -u)" -eq 0 ] || bench_die "run as root (Postfix needs its accounts, smtp-sink drops to nobody)"
bench_need_postfix
root=$(bench_mktemp)
PF_DIR=""
failed=0

cleanup() {
    [ -n "$PF_DIR" ] && pf_stop "$PF_DIR"
    vm_stop
    bench_kill_all
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        bench_log "bench: kept $root"
    else
        rm -rf "$root"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$root/bin"
SINKWATCH=$root/bin/sinkwatch
bench_cc "$bench_dir/sinkwatch.c" "$SINKWATCH"

vm_ok=0
if vm_usable; then vm_ok=1; fi

# Samples the local addresses of established connections to the sink port
# every 0.5 s (bounded by BENCH_TIMEOUT) until DIR/sampler.stop exists.
sampler() {
    local d=$1 port=$2 i=0
    while [ ! -f "$d/sampler.stop" ] && [ $i -lt $((BENCH_TIMEOUT * 2)) ]; do
        ss -Htn "dport = :$port" 2>/dev/null | awk '$1 == "ESTAB" { sub(/:[0-9]+$/, "", $4); print $4 }'
        sleep 0.5
        i=$((i + 1))
    done | sort -u > "$d/srcaddrs"
}

# run_one TARGET SIZE: sets R_RATE R_SECS R_COUNT R_ACCEPT R_SRC R_NOTE, and
# R_CPU_RELAY R_CPU_SINK (CPU microseconds per message of vipmta and of
# smtp-sink, user + system from /proc, from the start of injection to the
# N-th arrival; the relay's is "-" for direct and Postfix)
run_one() {
    local target=$1 size=$2 d sinkport port t0 tsrc t1 deadline sp relay_pid c0r c0s c1r c1s
    d=$root/$target-$size
    mkdir -p "$d"
    R_RATE=n/a R_SECS=n/a R_COUNT=0 R_ACCEPT=n/a R_SRC="" R_NOTE="" R_CPU_RELAY=- R_CPU_SINK=n/a
    if [ "$target" = vipmta ] && [ $vm_ok != 1 ]; then
        R_NOTE="to be measured: $VM_WHY"
        return 1
    fi
    sinkport=$(bench_free_port)
    sink_start "$d" "$sinkport" "$N"
    case $target in
        direct)
            port=$sinkport
            ;;
        postfix)
            port=$(bench_free_port)
            PF_DIR=$d/pf
            pf_setup "$PF_DIR" "$port" "$sinkport" "$PF_BIND"
            pf_start "$PF_DIR"
            ;;
        vipmta)
            port=$(bench_free_port)
            vm_config "$d/vipmta.json" "$port" "$d/spool" "127.0.0.1:$sinkport" "$VM_BINDS"
            if ! vm_start "$d/vipmta.json" "$d/vipmta.log"; then
                sink_stop "$d"
                R_NOTE="vipmta did not start (log: $d/vipmta.log)"
                return 1
            fi
            ;;
    esac
    sampler "$d" "$sinkport" &
    sp=$!
    bench_track $sp

    c0s=$(bench_cpu_ticks "$SINK_PID")
    c0r=0
    [ "$target" = vipmta ] && c0r=$(bench_cpu_ticks "$VM_PID")
    t0=$(bench_now)
    run_source "$port" "$N" "$size" "$d/source"
    tsrc=$(bench_now)
    deadline=$(( $(date +%s) + BENCH_TIMEOUT ))
    case $target in
        postfix) relay_pid=$PF_MASTER_PID ;;
        vipmta) relay_pid=$VM_PID ;;
        *) relay_pid="" ;;
    esac
    if sink_wait "$d" "$deadline" "$relay_pid"; then
        c1s=$(bench_cpu_ticks "$SINK_PID")
        R_CPU_SINK=$(bench_cpu_us $((c1s - c0s)) "$N")
        if [ "$target" = vipmta ]; then
            c1r=$(bench_cpu_ticks "$VM_PID")
            R_CPU_RELAY=$(bench_cpu_us $((c1r - c0r)) "$N")
        fi
        t1=$(cat "$d/sink.reached")
        R_SECS=$(bench_secs "$t0" "$t1")
        R_RATE=$(bench_rate "$N" "$t0" "$t1")
        sleep "$BENCH_SETTLE"
    else
        R_NOTE="sink never reached $N messages: $SINK_WHY"
    fi
    R_ACCEPT=$(bench_rate "$SOURCE_COUNT" "$t0" "$tsrc")
    touch "$d/sampler.stop"
    wait $sp 2>/dev/null
    sink_stop "$d"
    R_COUNT=$SINK_COUNT
    R_SRC=$(tr '\n' ' ' < "$d/srcaddrs" 2>/dev/null)
    case $target in
        postfix) pf_stop "$PF_DIR"; PF_DIR="" ;;
        vipmta) vm_stop ;;
    esac
    if [ "$R_COUNT" != "$N" ]; then
        bench_loud "$target, $size B: the sink received $R_COUNT messages, expected $N${R_NOTE:+ ($R_NOTE)}"
        failed=1
    fi
    [ "$SOURCE_COUNT" = "$N" ] || { R_NOTE="${R_NOTE:+$R_NOTE; }smtp-source completed $SOURCE_COUNT of $N"; failed=1; }
    return 0
}

# strace_one SIZE: a separate short vipmta run of BENCH_STRACE_MESSAGES
# messages with `strace -c -f` attached to the daemon (every thread) from
# just before the injection until the last message reached the sink. Prints
# system calls per relayed message, the most frequent ones, and syncs
# (fdatasync + fsync + syncfs) per message.
strace_one() {
    local size=$1 m=$BENCH_STRACE_MESSAGES d sinkport port stpid deadline i total syncs
    d=$root/strace-$size
    mkdir -p "$d"
    sinkport=$(bench_free_port)
    sink_start "$d" "$sinkport" "$m"
    port=$(bench_free_port)
    vm_config "$d/vipmta.json" "$port" "$d/spool" "127.0.0.1:$sinkport" "$VM_BINDS"
    if ! vm_start "$d/vipmta.json" "$d/vipmta.log"; then
        sink_stop "$d"
        echo "strace   $size B  vipmta did not start (log: $d/vipmta.log)"
        failed=1
        return 0
    fi
    strace -c -f -p "$VM_PID" -o "$d/strace.out" 2> "$d/strace.err" &
    stpid=$!
    bench_track $stpid
    i=0
    while ! grep -q attached "$d/strace.err" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    sleep 0.5
    run_source "$port" "$m" "$size" "$d/source"
    deadline=$(( $(date +%s) + BENCH_TIMEOUT ))
    sink_wait "$d" "$deadline" "$VM_PID" || bench_loud "strace run, $size B: $SINK_WHY"
    kill -INT "$stpid" 2>/dev/null
    wait "$stpid" 2>/dev/null
    sink_stop "$d"
    vm_stop
    [ "$SINK_COUNT" = "$m" ] || { bench_loud "strace run, $size B: the sink received $SINK_COUNT of $m"; failed=1; }
    # strace -c: "% time seconds usecs/call calls [errors] syscall", a "total" line last
    total=$(awk '$NF == "total" { print $4 }' "$d/strace.out")
    syncs=$(awk '$NF == "fdatasync" || $NF == "fsync" || $NF == "syncfs" { s += $4 } END { print s + 0 }' "$d/strace.out")
    printf 'strace   %6s B  %s messages: %s system calls per message (target <= 30), syncs %s per message (target <= 0.3)\n' \
        "$size" "$m" "$(awk -v t="${total:-0}" -v n="$m" 'BEGIN { printf "%.1f", t / n }')" \
        "$(awk -v t="$syncs" -v n="$m" 'BEGIN { printf "%.3f", t / n }')"
    printf 'strace   %6s B  per message:' "$size"
    awk -v n="$m" '$1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 { printf "%s %.2f\n", $NF, $4 / n }' "$d/strace.out" |
        sort -k2 -n -r | head -14 | awk '{ printf " %s %s", $1, $2 } END { print "" }'
}

echo "vipmta end-to-end bench: $N messages per run, $BENCH_SESSIONS sessions, sizes: $SIZES"
echo "host: $(nproc) CPUs, $(uname -r), temp dir $root ($(stat -f -c %T "$root"))"
echo "postfix: $("$PF_SBIN/postconf" -d -h mail_version 2>/dev/null) from $PF_ROOT; vipmta: $VIPMTA"
[ $vm_ok = 1 ] || echo "vipmta: not run: $VM_WHY"
echo

for size in $SIZES; do
    rate_direct="" rate_postfix="" rate_vipmta="" cpu_relay_vipmta="" cpu_sink_vipmta=""
    for target in $TARGETS; do
        sync
        sleep "$BENCH_GAP"
        run_one "$target" "$size"
        eval "rate_$target=\$R_RATE"
        eval "cpu_relay_$target=\$R_CPU_RELAY cpu_sink_$target=\$R_CPU_SINK"
        printf '%-8s %6s B  %10s msgs/s  %9s s  sink got %6s/%s  accepted at %10s msgs/s  cpu us/msg: relay %s sink %s  from: %s%s\n' \
            "$target" "$size" "$R_RATE" "$R_SECS" "$R_COUNT" "$N" "$R_ACCEPT" "$R_CPU_RELAY" "$R_CPU_SINK" \
            "${R_SRC:--}" "${R_NOTE:+  [$R_NOTE]}"
    done
    case " $TARGETS " in
        *" vipmta "*)
            printf '%-8s %6s B  vipmta %s us/msg, smtp-sink %s us/msg in the same run: ratio %s (target <= 2.5); vipmta %s msgs/s per core\n' \
                "cpu" "$size" "${cpu_relay_vipmta:-n/a}" "${cpu_sink_vipmta:-n/a}" \
                "$(bench_ratio "${cpu_relay_vipmta:-}" "${cpu_sink_vipmta:-}")" \
                "$(awk -v c="${cpu_relay_vipmta:-}" 'BEGIN { if (c + 0 > 0) printf "%.0f", 1000000 / c; else print "n/a" }')"
            if [ "$BENCH_STRACE_MESSAGES" -gt 0 ] && [ $vm_ok = 1 ]; then
                sync
                sleep "$BENCH_GAP"
                strace_one "$size"
            fi
            ;;
    esac
    printf '%-8s %6s B  ratio vipmta/postfix = %s   vipmta/direct = %s (target >= %s)   postfix/direct = %s\n\n' \
        "ratios" "$size" "$(bench_ratio "$rate_vipmta" "$rate_postfix")" \
        "$(bench_ratio "$rate_vipmta" "$rate_direct")" "$([ "$size" -le 1024 ] && echo 0.6 || echo 0.5)" \
        "$(bench_ratio "$rate_postfix" "$rate_direct")"
done

[ $failed = 0 ] || { bench_loud "at least one run lost or duplicated messages: see above"; exit 1; }
exit 0
