#!/bin/sh
# binding_choose.sh: ns per message of the binding choice in a group (the binding_group_choose_binding chain with 0, 1 and 4 providers, then the core's round-robin) against the core's choice alone.
# Usage: bench/binding_choose.sh
#   env: VIPMTA_BUILD (a configured and built tree, default _build; or VIPMTA=.../core/vipmta),
#        BENCH_ITERATIONS (5000000 per run), BENCH_RUNS (7, best taken), BENCH_PROVIDER_COUNTS ("0 1 4"),
#        BENCH_TMPDIR, BENCH_KEEP=1 (keep the temp dir with the built helpers)
set -eu
bench_dir=$(cd "$(dirname "$0")" && pwd)
. "$bench_dir/common.sh"
. "$bench_dir/corelink.sh"

iters=${BENCH_ITERATIONS:-5000000}
runs=${BENCH_RUNS:-7}
counts=${BENCH_PROVIDER_COUNTS:-"0 1 4"}

corelink_find
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/vipmta-choosebench.XXXXXX") || bench_die "mktemp"
cleanup() { [ "${BENCH_KEEP:-0}" = 1 ] && bench_log "kept $work" || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

corelink_module "$work/binding_choose_mod.so" "$bench_dir/binding_choose_mod.c"
corelink_prog "$work/binding_choose" "$bench_dir/binding_choose.c"

echo "binding_choose: binding_choose() (the core's, from core/libvipmta_core.la, linked like the"
echo "  daemon) for a message of group \"pool\" (3 bindings), the providers declining in a"
echo "  separate shared object (dlopen), vs the core's round-robin alone"
corelink_describe
echo "$(nproc) CPUs, load: $(uptime | sed 's/.*load average: //')"
echo "$iters choices per run, best of $runs interleaved runs per mode"
echo
(cd "$work" && ./binding_choose -s "$work/binding_choose_mod.so" -i "$iters" -r "$runs" -c "$counts") ||
    bench_die "binding_choose failed"
echo
echo "  choose: binding_choose(msg, \"pool\", none excluded, no fallback): has_ check, the chain"
echo "          (every provider declines), then binding_group_choose_except"
echo "  core:   binding_group_choose_except(\"pool\", none) alone; chain ns/msg = choose - core"
echo "load after: $(uptime | sed 's/.*load average: //')"
