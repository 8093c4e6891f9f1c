#!/bin/sh
# accept.sh: accept-half bench: raw fsync spool references (per message, per batch) and vipmta's accepted msgs/s, as ratios.
#
# One command: bench/accept.sh   (as root, for smtp-source from the unpacked Postfix)
# Environment:
#   BENCH_MESSAGES      messages smtp-source injects into vipmta (default 20000)
#   BENCH_SIZE          message size in bytes (default 1024)
#   BENCH_SESSIONS      parallel smtp-source sessions (default 20)
#   BENCH_RAW_MESSAGES  messages fsync_raw writes per reference (default BENCH_MESSAGES)
#   BENCH_RAW_SECONDS   time limit of each reference (default 60; the rate is over what was written)
#   BENCH_BATCH         messages per sync round in the batched references (default BENCH_SESSIONS:
#                       with one message in flight per session, a round can hold at most that many)
#   BENCH_SYNC_THREADS  threads issuing a round's fsyncs at once in the pooled reference (default 4)
#   BENCH_TIMEOUT       seconds the injection may take (default 600)
#   BENCH_TMPDIR        where the temp dir (spools) goes (default /var/tmp; a disk, not tmpfs)
#   BENCH_KEEP=1        keep the temp dir
#   BENCH_SKIP_VIPMTA=1 only the references
#   VIPMTA              the daemon binary (default $top/_build/core/vipmta)
#
# References (bench/fsync_raw.c, same filesystem as vipmta's spool):
#   per-message   create+write, fsync(file), fsync(dir) for every message (a naive MTA)
#   batch-fsync   K files written, each fsynced (one after the other), one fsync(dir) per round
#   batch-fsync-pool  the same, the K fsyncs issued by J threads at once (the journal merges them)
#   batch-syncfs  K files written, one syncfs() and one fsync(dir) per round
# vipmta: listens on a free 127.0.0.1 port, spool in the temp dir, routes
# {"*": "127.0.0.1:1"} so nothing is delivered (attempts fail, mail stays
# queued), relay_from 127.0.0.0/8; smtp-source -c -s 20 -m N -l S injects.
# Accepted msgs/s = messages smtp-source completed / injection wall time.
set -u

bench_dir=$(cd "$(dirname "$0")" && pwd)
. "$bench_dir/common.sh"
. "$bench_dir/vipmta.sh"

N=${BENCH_MESSAGES:-20000}
S=${BENCH_SIZE:-1024}
RAW_N=${BENCH_RAW_MESSAGES:-$N}
RAW_T=${BENCH_RAW_SECONDS:-60}
K=${BENCH_BATCH:-$BENCH_SESSIONS}
J=${BENCH_SYNC_THREADS:-4}

root=$(bench_mktemp)
failed=0
cleanup() {
    vm_stop
    bench_kill_all
    if [ "${BENCH_KEEP:-0}" = 1 ]; then bench_log "bench: kept $root"; else rm -rf "$root"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$root/bin" "$root/raw"
bench_cc "$bench_dir/fsync_raw.c" "$root/bin/fsync_raw"

echo "vipmta accept bench: $N messages of $S B, $BENCH_SESSIONS sessions; references: $RAW_N messages, batch $K, pool $J threads"
echo "host: $(nproc) CPUs, $(uname -r), temp dir $root ($(stat -f -c %T "$root"), $(df -P "$root" | awk 'NR == 2 { print $1 }'))"
echo

# raw LABEL ARGS...: runs fsync_raw, prints its line, sets RAW_RATE.
raw() {
    local label=$1 line
    shift
    line=$("$root/bin/fsync_raw" -n "$RAW_N" -s "$S" -T "$RAW_T" "$@" "$root/raw") ||
        bench_die "fsync_raw $* failed"
    RAW_RATE=$(printf '%s\n' "$line" | sed -n 's/.*msgs_per_s=\([0-9.]*\).*/\1/p')
    printf '%-30s %10s msgs/s   (%s)\n' "$label" "$RAW_RATE" "$line"
}

raw "raw fsync per message" -k 1
rate_raw=$RAW_RATE
raw "raw batch-fsync (K=$K)" -k "$K" -m fsync
rate_batch=$RAW_RATE
raw "raw batch-fsync-pool (K=$K,J=$J)" -k "$K" -m fsync -j "$J"
rate_pool=$RAW_RATE
raw "raw batch-syncfs (K=$K)" -k "$K" -m syncfs
rate_syncfs=$RAW_RATE

rate_vm=""
if [ "${BENCH_SKIP_VIPMTA:-0}" = 1 ]; then
    echo "vipmta: skipped (BENCH_SKIP_VIPMTA=1)"
elif ! vm_usable; then
    printf '%-30s %10s msgs/s   (to be measured: %s)\n' "vipmta accepted" "n/a" "$VM_WHY"
else
    bench_need_postfix
    port=$(bench_free_port)
    mkdir -p "$root/vipmta"
    vm_config "$root/vipmta/vipmta.json" "$port" "$root/vipmta/spool" "127.0.0.1:1"
    if vm_start "$root/vipmta/vipmta.json" "$root/vipmta/vipmta.log"; then
        t0=$(bench_now)
        run_source "$port" "$N" "$S" "$root/vipmta/source"
        t1=$(bench_now)
        [ "$SOURCE_RC" = 0 ] && [ "$SOURCE_COUNT" = "$N" ] || failed=1
        rate_vm=$(bench_rate "$SOURCE_COUNT" "$t0" "$t1")
        # the crash check: kill -9, restart on the same spool, count what it recovers
        kill -9 "$VM_PID" 2>/dev/null
        wait "$VM_PID" 2>/dev/null
        VM_PID=""
        recovered=n/a
        if vm_start "$root/vipmta/vipmta.json" "$root/vipmta/restart.log"; then
            # the listener is bound before the spool is recovered: wait for the line (60 s at most)
            i=0
            while ! grep -q 'spool recovered:' "$root/vipmta/restart.log" && [ $i -lt 600 ]; do
                sleep 0.1
                i=$((i + 1))
            done
            recovered=$(sed -n 's/.*spool recovered: \([0-9]*\) messages.*/\1/p' "$root/vipmta/restart.log" | head -1)
            [ -n "$recovered" ] || recovered=n/a
            vm_stop
        fi
        printf '%-30s %10s msgs/s   (%s of %s messages in %s s; %s recovered after kill -9 and restart)\n' \
            "vipmta accepted" "$rate_vm" "$SOURCE_COUNT" "$N" "$(bench_secs "$t0" "$t1")" "$recovered"
        [ "$recovered" != n/a ] && [ "$recovered" -ge "$SOURCE_COUNT" ] ||
            { bench_loud "only $recovered of $SOURCE_COUNT acknowledged messages recovered after kill -9"; failed=1; }
    else
        printf '%-30s %10s msgs/s   (vipmta did not start; log %s)\n' "vipmta accepted" "n/a" "$root/vipmta/vipmta.log"
        failed=1
    fi
fi

echo
echo "ratios: batch-fsync/raw = $(bench_ratio "$rate_batch" "$rate_raw")   batch-fsync-pool/raw = $(bench_ratio "$rate_pool" "$rate_raw")   batch-syncfs/raw = $(bench_ratio "$rate_syncfs" "$rate_raw")"
echo "        vipmta/raw = $(bench_ratio "$rate_vm" "$rate_raw")   vipmta/batch-fsync = $(bench_ratio "$rate_vm" "$rate_batch")   vipmta/batch-fsync-pool = $(bench_ratio "$rate_vm" "$rate_pool")   vipmta/batch-syncfs = $(bench_ratio "$rate_vm" "$rate_syncfs")"
[ $failed = 0 ] || { bench_loud "the vipmta accept run failed or lost messages: see above"; exit 1; }
exit 0
