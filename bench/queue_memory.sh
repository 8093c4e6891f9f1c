#!/bin/sh
# queue_memory.sh: resident bytes per queued recipient and spool reload time, 1,000,000 recipients by default.
# Usage: bench/queue_memory.sh   (env: VIPMTA=path/to/vipmta, BENCH_MESSAGES=10000, BENCH_RCPTS=100, BENCH_DOMAINS=1000)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
vipmta=${VIPMTA:-$top/_build/core/vipmta}
# started as root (containers, CI), the daemon needs this or "user" (docs/operations.md)
export VIPMTA_RUN_AS_ROOT=1
messages=${BENCH_MESSAGES:-10000}
rcpts=${BENCH_RCPTS:-100}
domains=${BENCH_DOMAINS:-1000}
[ -x "$vipmta" ] || { echo "queue_memory: no daemon at $vipmta (build first, or set VIPMTA)" >&2; exit 1; }
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts the daemon on spool $1; prints its resident KiB once the spool is recovered.
measure() {
    spool=$1
    cat >"$work/cfg.json" <<JSON
{ "spool_dir": "$spool", "listen": [{"address": "127.0.0.1", "port": $(port)}],
  "routes": {"*": "127.0.0.1:9"}, "log_level": "notice" }
JSON
    "$vipmta" -f -c "$work/cfg.json" 2>"$work/log" &
    pid=$!
    i=0
    while ! grep -q "spool recovered" "$work/log"; do
        i=$((i + 1))
        [ $i -gt 1200 ] && { echo "queue_memory: daemon did not recover in 120 s" >&2; cat "$work/log" >&2; exit 1; }
        sleep 0.1
    done
    sleep 1
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    echo "$rss"
}

mkdir -p "$work/empty"
base_kib=$(measure "$work/empty")
echo "queue_memory: generating $messages messages x $rcpts recipients over $domains domains..."
total=$(python3 "$top/bench/make_spool.py" "$work/full" "$messages" "$rcpts" "$domains")
sync
full_kib=$(measure "$work/full")
reload=$(sed -n 's/.*spool recovered: \([0-9]*\) messages, \([0-9]*\) recipients pending.* in \([0-9.]*\) s.*/\1 \2 \3/p' "$work/log")
set -- $reload
[ "$2" = "$total" ] || { echo "queue_memory: expected $total recipients recovered, log says ${2:-?}" >&2; exit 1; }
per=$(( (full_kib - base_kib) * 1024 / total ))
echo "queue_memory: recipients queued:        $total (in $1 messages)"
echo "queue_memory: RSS empty daemon:         $base_kib KiB"
echo "queue_memory: RSS with the queue:       $full_kib KiB"
echo "queue_memory: bytes per recipient:      $per (target <= 512: ratio $(awk "BEGIN {printf \"%.2f\", $per / 512}"))"
echo "queue_memory: spool reload time:        $3 s (target < 10 s: ratio $(awk "BEGIN {printf \"%.2f\", $3 / 10}"))"
