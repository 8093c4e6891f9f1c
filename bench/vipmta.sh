# vipmta.sh: library for the bench: write a vipmta config, start the daemon in the foreground, stop it.
# Sourced after common.sh. Functions:
#   vm_usable                      0 when $VIPMTA exists and runs (-V); sets VM_WHY otherwise
#   vm_config FILE PORT SPOOL ROUTE [BINDINGS]
#                                  ROUTE: "host:port" for routes {"*": ROUTE};
#                                  BINDINGS: space-separated IPv4 source addresses, made
#                                  bindings b1..bn in group "bench" = default_binding_group
#   vm_start FILE LOG              vipmta -f -c FILE, stderr to LOG; waits for the listener
#   vm_stop                        SIGTERM (then SIGKILL after 10 s) to the daemon we started
# Config keys as documented in core/config/config.h. Extra top-level members can be
# added with BENCH_VIPMTA_CONFIG_EXTRA='"domains": {...}, "log_level": "debug"', and
# members of the listen entry with BENCH_VIPMTA_LISTEN_EXTRA='"certificates": [...]'.

vm_usable() {
    VM_WHY=""
    if [ ! -x "$VIPMTA" ]; then
        VM_WHY="no vipmta binary at $VIPMTA (build it, or set VIPMTA=/path/to/core/vipmta)"
        return 1
    fi
    if ! timeout 10 "$VIPMTA" -V > /dev/null 2>&1; then
        VM_WHY="$VIPMTA -V fails: $(timeout 10 "$VIPMTA" -V 2>&1 | head -2 | tr '\n' ' ')"
        return 1
    fi
    return 0
}

vm_config() {
    local file=$1 port=$2 spool=$3 route=$4 binds=${5:-} i=0 a sep blist glist
    blist=""
    glist=""
    sep=""
    for a in $binds; do
        i=$((i + 1))
        blist="$blist$sep\"b$i\": { \"address\": \"$a\", \"ehlo\": \"b$i.bench.test\" }"
        glist="$glist$sep\"b$i\""
        sep=", "
    done
    {
        echo '{'
        echo '  "hostname": "vipmta.bench.test",'
        echo "  \"spool_dir\": \"$spool\","
        echo "  \"listen\": [{ \"address\": \"127.0.0.1\", \"port\": $port${BENCH_VIPMTA_LISTEN_EXTRA:+, $BENCH_VIPMTA_LISTEN_EXTRA} }],"
        echo '  "relay_from": ["127.0.0.0/8"],'
        if [ -n "$blist" ]; then
            echo "  \"bindings\": { $blist },"
            echo "  \"binding_groups\": { \"bench\": [$glist] },"
            echo '  "default_binding_group": "bench",'
        fi
        [ -n "${BENCH_VIPMTA_CONFIG_EXTRA:-}" ] && echo "  $BENCH_VIPMTA_CONFIG_EXTRA,"
        echo "  \"delivery_log\": \"$(dirname "$file")/delivery.jsonl\","
        echo "  \"log_level\": \"${BENCH_VIPMTA_LOG_LEVEL:-info}\","
        echo "  \"routes\": { \"*\": \"$route\" }"
        echo '}'
    } > "$file"
}

vm_start() {
    local cfg=$1 log=$2 port
    port=$(sed -n 's/.*"port": \([0-9]*\).*/\1/p' "$cfg" | head -1)
    if ! timeout 30 "$VIPMTA" -t -c "$cfg" > "$log.check" 2>&1; then
        cat "$log.check" >&2
        bench_loud "vipmta -t rejects the bench config $cfg"
        return 1
    fi
    "$VIPMTA" -f -c "$cfg" 2> "$log" > /dev/null &
    VM_PID=$!
    bench_track $VM_PID
    local i=0
    while [ $i -lt 150 ]; do
        bench_port_busy "$port" && return 0
        kill -0 "$VM_PID" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    tail -20 "$log" >&2
    bench_loud "vipmta did not start listening on 127.0.0.1:$port"
    bench_kill "$VM_PID"
    VM_PID=""
    return 1
}

vm_stop() {
    [ -n "${VM_PID:-}" ] && bench_kill "$VM_PID"
    VM_PID=""
}
