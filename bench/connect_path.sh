#!/bin/sh
# connect_path.sh: connections per second through the core's outbound path with sockopt, netacl, throttle and connlog, against a bare connect loop; opt-in ephemeral-port check.
# Usage: bench/connect_path.sh                   the benchmark (8 rounds x 20,000 connections per variant)
#        BENCH_PORTS=1 bench/connect_path.sh     the benchmark, then the ephemeral-port check
#        BENCH_PORTS=only bench/connect_path.sh  only the ephemeral-port check (200,000 connections)
#   env: VIPMTA_BUILD (a configured and built tree, default _build; or VIPMTA=.../core/vipmta),
#        BENCH_CONNS (20000 per run), BENCH_ROUNDS (8), BENCH_BREAKDOWN=1 (each module alone too),
#        BENCH_NO_THROTTLE=1, BENCH_SOCKOPT (docs: 6 options | tos: 1), BENCH_CONNLOG_FLUSH
#        (connlog's flush_interval_ms: 200, as its docs advise; 0: a write per line), BENCH_PORTS_CONNS (200000), BENCH_NETNS (auto|0),
#        BENCH_PORTS_SECONDS (120: each port run stops there),
#        BENCH_PORTS_HOST=1 (allow the port check outside a private network namespace),
#        BENCH_TMPDIR, BENCH_KEEP=1
set -eu
bench_dir=$(cd "$(dirname "$0")" && pwd)
. "$bench_dir/common.sh"
. "$bench_dir/corelink.sh"

conns=${BENCH_CONNS:-20000}
rounds=${BENCH_ROUNDS:-8}
ports=${BENCH_PORTS:-0}
ports_conns=${BENCH_PORTS_CONNS:-200000}
ports_limit=${BENCH_PORTS_SECONDS:-120}
target=0.85

corelink_find
moddir=$BUILD/modules/.libs
[ -f "$moddir/connlog.so" ] || bench_die "no built modules in $moddir"
work=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/vipmta-connbench.XXXXXX") || bench_die "mktemp"
chmod 755 "$work"
cleanup() { [ "${BENCH_KEEP:-0}" = 1 ] && bench_log "kept $work" || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

corelink_prog "$work/connect_path" "$bench_dir/connect_path.c"

# A private network namespace (its own loopback, ports, TIME_WAIT table and
# sysctls) keeps the load away from everything else on the machine.
netns=0
if [ "${BENCH_NETNS:-auto}" != 0 ] && command -v unshare > /dev/null &&
    unshare -n sh -c 'ip link set lo up' 2> /dev/null; then
    netns=1
fi
# in_ns SYSCTLS CMD...: runs CMD (in a fresh namespace when we have them, with
# the given "key=value" sysctls set there), then prints the TIME_WAIT count.
in_ns() {
    local sysctls=$1
    shift
    if [ $netns = 1 ]; then
        unshare -n sh -c '
            ip link set lo up || exit 1
            for kv in $0; do sysctl -qw "$kv" || exit 1; done
            "$@"; rc=$?
            echo "TIME_WAIT sockets at the end: $(ss -Htan state time-wait | wc -l)"
            exit $rc' "$sysctls" "$@"
    else
        "$@"
    fi
}

echo "connect_path: $(corelink_describe)"
echo "$(nproc) CPUs, load: $(uptime | sed 's/.*load average: //')"
if [ $netns = 1 ]; then
    echo "network: a private network namespace (unshare -n), its loopback only; sysctls at their defaults"
else
    echo "network: the machine's own loopback (no private namespace: BENCH_NETNS=0 or unshare unavailable)"
fi
echo "ip_local_port_range: $(sysctl -n net.ipv4.ip_local_port_range | tr '\t' ' '), tcp_tw_reuse: $(sysctl -n net.ipv4.tcp_tw_reuse)"

if [ "$ports" != only ]; then
    echo
    flags=""
    [ "${BENCH_BREAKDOWN:-0}" = 1 ] && flags="$flags -b"
    [ "${BENCH_NO_THROTTLE:-0}" = 1 ] && flags="$flags -x"
    flags="$flags -S ${BENCH_SOCKOPT:-docs} -F ${BENCH_CONNLOG_FLUSH:-200}"
    # shellcheck disable=SC2086
    in_ns "" "$work/connect_path" -M "$moddir" -T "$work" -n "$conns" -r "$rounds" $flags \
        > "$work/bench.out" || { cat "$work/bench.out"; bench_die "the benchmark failed"; }
    grep -v '^RESULT' "$work/bench.out"
    lines=$(wc -l < "$work/connlog.jsonl" 2>/dev/null || echo 0)
    echo "connlog lines written: $lines (one per connection through the modules)"
    echo "load after: $(uptime | sed 's/.*load average: //')"
    res=$(sed -n 's/^RESULT //p' "$work/bench.out")
    ratio=$(echo "$res" | sed -n 's/^ratio_median=\([0-9.]*\).*/\1/p')
    cpu_ratio=$(echo "$res" | sed -n 's/.*cpu_ratio_median=\([0-9.]*\).*/\1/p')
    [ -n "$cpu_ratio" ] && echo "CPU of the connecting thread per connection, bare / full path: $cpu_ratio (median of the per-round ratios)"
    if [ -n "$ratio" ]; then
        if awk -v r="$ratio" -v t="$target" 'BEGIN { exit !(r >= t) }'; then
            echo "target: full path / bare = $ratio (median of the per-round ratios) >= $target: met"
        else
            echo "target: full path / bare = $ratio (median of the per-round ratios) < $target: NOT met"
        fi
    fi
fi

if [ "$ports" = 1 ] || [ "$ports" = only ]; then
    echo
    if [ $netns = 0 ] && [ "${BENCH_PORTS_HOST:-0}" != 1 ]; then
        bench_die "the ephemeral-port check needs a private network namespace (root and unshare): without one it would use up the machine's loopback ports; BENCH_PORTS_HOST=1 forces it"
    fi
    echo "ephemeral ports: $ports_conns connections from one source address to one port, each a fresh namespace"
    echo "(the client closes right after the handshake, without SO_LINGER, as the daemon does; the listener closes only after the client's FIN, so every TIME_WAIT is on the client side: the worst case)"
    echo "(each run stops at its first failure or after ${ports_limit} s)"
    echo
    echo "1. IP_BIND_ADDRESS_NO_PORT on: the daemon's deliver_connect():"
    in_ns "" "$work/connect_path" -P on -n "$ports_conns" -s 127.0.0.10 -L "$ports_limit" ||
        bench_die "port check (on) failed"
    echo
    echo "2. off: socket, bind(127.0.0.10:0) without the option, connect:"
    in_ns "" "$work/connect_path" -P off -n "$ports_conns" -s 127.0.0.10 -L "$ports_limit" ||
        bench_die "port check (off) failed"
    if [ $netns = 1 ]; then
        echo
        echo "3. on, with net.ipv4.tcp_tw_reuse=0 in the namespace (2, the default, allows reusing a"
        echo "   TIME_WAIT port for loopback traffic only: this is what a remote destination gets):"
        in_ns "net.ipv4.tcp_tw_reuse=0" "$work/connect_path" -P on -n "$ports_conns" -s 127.0.0.10 \
            -L "$ports_limit" || bench_die "port check (on, tw_reuse 0) failed"
    fi
    echo "load after: $(uptime | sed 's/.*load average: //')"
fi
