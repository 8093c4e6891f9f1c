#!/bin/sh
# hook_dispatch.sh: ns per call_core_connection_post_bind_hook with 0, 1, 4 and 16 hooks against a plain loop over the same function pointers.
# Usage: bench/hook_dispatch.sh
#   env: VIPMTA_BUILD (a configured and built tree, default _build; or VIPMTA=.../core/vipmta),
#        BENCH_ITERATIONS (20000000 per run), BENCH_RUNS (7, best taken), BENCH_HOOK_COUNTS ("0 1 4 16"),
#        BENCH_TMPDIR, BENCH_KEEP=1 (keep the temp dir with the built helpers)
set -eu
bench_dir=$(cd "$(dirname "$0")" && pwd)
. "$bench_dir/common.sh"
. "$bench_dir/corelink.sh"

iters=${BENCH_ITERATIONS:-20000000}
runs=${BENCH_RUNS:-7}
counts=${BENCH_HOOK_COUNTS:-"0 1 4 16"}
target=1.25

corelink_find
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/vipmta-hookbench.XXXXXX") || bench_die "mktemp"
cleanup() { [ "${BENCH_KEEP:-0}" = 1 ] && bench_log "kept $work" || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

corelink_module "$work/hook_dispatch_mod.so" "$bench_dir/hook_dispatch_mod.c"
corelink_prog "$work/hook_dispatch" "$bench_dir/hook_dispatch.c"

echo "hook_dispatch: call_core_connection_post_bind_hook (the core's, from core/libvipmta_core.la,"
echo "  linked like the daemon) vs a plain loop over the same {function, closure} pairs;"
echo "  the hooks live in a separate shared object (dlopen), so nothing inlines"
corelink_describe
echo "$(nproc) CPUs, load: $(uptime | sed 's/.*load average: //')"
echo "$iters dispatches per run, best of $runs interleaved runs per mode"
echo
out=$("$work/hook_dispatch" -s "$work/hook_dispatch_mod.so" -i "$iters" -r "$runs" -c "$counts") ||
    bench_die "hook_dispatch failed"
echo "$out"
echo
echo "  call_:    call_core_connection_post_bind_hook(dr, slot, fd, addr, len), the chain's function"
echo "  plain:    for (i < n) { ret = pairs[i].fn(pairs[i].closure, dr, slot, fd, addr, len); if (ret) break; }"
echo "            written in the timing loop (no call of its own); ratio = call_ / plain"
echo "  plainfn:  the same loop in a non-inlined function of the bench; ratio = call_ / plainfn"
echo "  has+call: has_core_connection_post_bind_hook() && call_...(), as core/deliver/deliver_connect.c does; ratio = / plain"
echo "load after: $(uptime | sed 's/.*load average: //')"

r4=$(echo "$out" | awk '$1 == "4" { print $4 }')
if [ -n "$r4" ]; then
    if awk -v r="$r4" -v t="$target" 'BEGIN { exit !(r <= t) }'; then
        echo "target: call_/plain at 4 hooks = $r4 <= $target: met"
    else
        echo "target: call_/plain at 4 hooks = $r4 > $target: NOT met"
    fi
fi
