# common.sh: shared helpers for the bench scripts (paths, free ports, timing, smtp-sink with a message counter).
# Sourced by accept.sh and e2e.sh after they set bench_dir. POSIX sh plus the
# `local` keyword (dash and bash both have it).

top=${top:-$(cd "$bench_dir/.." && pwd)}
PF_ROOT=${VIPMTA_POSTFIX_DIR:-/opt/vipmta-postfix}
PF_LIB=$PF_ROOT/usr/lib/postfix
PF_SBIN=$PF_ROOT/usr/sbin
SMTP_SOURCE=$PF_SBIN/smtp-source
SMTP_SINK=$PF_SBIN/smtp-sink
VIPMTA=${VIPMTA:-$top/_build/core/vipmta}
# started as root (containers, CI), the daemon needs this or "user" (docs/operations.md)
export VIPMTA_RUN_AS_ROOT=1
BENCH_TIMEOUT=${BENCH_TIMEOUT:-600}     # seconds, the longest any single run may take
BENCH_SESSIONS=${BENCH_SESSIONS:-20}
BENCH_PIDS=""                           # every background process this script started

bench_log() { printf '%s\n' "$*" >&2; }
bench_die() { printf 'bench: FATAL: %s\n' "$*" >&2; exit 1; }
bench_loud() {
    printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n!!! %s\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' "$*"
}

# The unpacked Postfix tree: smtp-source and smtp-sink need its libraries.
bench_need_postfix() {
    [ -x "$SMTP_SOURCE" ] && [ -x "$SMTP_SINK" ] ||
        bench_die "smtp-source/smtp-sink not found under $PF_ROOT; run VIPMTA_DEPS_POSTFIX=1 scripts/deps"
    LD_LIBRARY_PATH=$PF_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
}

# A fresh temp dir on a disk-backed filesystem (fsync on tmpfs proves nothing).
bench_mktemp() {
    local base d fstype
    base=${BENCH_TMPDIR:-/var/tmp}
    d=$(mktemp -d "$base/vipmta-bench.XXXXXX") || bench_die "mktemp in $base"
    fstype=$(stat -f -c %T "$d" 2>/dev/null || echo unknown)
    case $fstype in
        tmpfs|ramfs) bench_loud "$d is on $fstype: fsync figures are meaningless; set BENCH_TMPDIR to a disk" ;;
    esac
    chmod 755 "$d"
    echo "$d"
}

# Compiles one of the bench's C helpers into $2.
bench_cc() {
    ${CC:-cc} -O2 -Wall -Wextra -pthread -o "$2" "$1" || bench_die "cannot compile $1"
}

bench_now() { date +%s.%N; }

# Prints COUNT/(T1-T0) with one decimal.
bench_rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; if (d <= 0) print "n/a"; else printf "%.1f", n / d }'; }
bench_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# Prints A/B with two decimals, "n/a" when either is missing.
bench_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}

# CPU time (user + system, all threads, in clock ticks) a process has used so far; 0 when gone.
bench_cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
BENCH_CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
# Microseconds of CPU per message: TICKS COUNT.
bench_cpu_us() {
    awk -v t="$1" -v n="$2" -v hz="$BENCH_CLK_TCK" 'BEGIN { if (n <= 0 || t == "") print "n/a"; else printf "%.0f", t * 1000000 / hz / n }'
}

bench_port_busy() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# A TCP port nobody listens on (racy by nature; good enough on a test box).
bench_free_port() {
    local i p
    i=0
    while [ $i -lt 200 ]; do
        p=$(awk -v s="$$$i$(date +%N)" 'BEGIN { srand(s % 2147483647); printf "%d", 20000 + int(rand() * 40000) }')
        if ! bench_port_busy "$p"; then echo "$p"; return 0; fi
        i=$((i + 1))
    done
    bench_die "no free port found"
}

# Waits until something listens on PORT (TIMEOUT seconds, default 15).
bench_wait_port() {
    local port=$1 limit=${2:-15} i=0
    while [ $i -lt $((limit * 10)) ]; do
        bench_port_busy "$port" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

bench_track() { BENCH_PIDS="$BENCH_PIDS $1"; }

# Stops one process we started: TERM, up to 10 s, then KILL; reaps it.
bench_kill() {
    local pid=$1 i=0
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# Kills whatever we started and is still running (for the exit trap).
bench_kill_all() {
    local p
    for p in $BENCH_PIDS; do
        kill -0 "$p" 2>/dev/null && bench_kill "$p"
    done
    BENCH_PIDS=""
}

# sink_start DIR PORT TARGET: smtp-sink on 127.0.0.1:PORT, counting (-c), its
# counter stream read by sinkwatch, which stamps DIR/sink.reached when TARGET
# messages have arrived. Needs $SINKWATCH (the compiled helper).
sink_start() {
    local d=$1 port=$2 target=$3
    rm -f "$d/sink.fifo" "$d/sink.reached" "$d/sink.reached.progress" "$d/sink.final"
    mkfifo "$d/sink.fifo" || bench_die "mkfifo $d/sink.fifo"
    "$SINKWATCH" "$target" "$d/sink.reached" < "$d/sink.fifo" > "$d/sink.final" &
    SINKWATCH_PID=$!
    bench_track $SINKWATCH_PID
    # -u nobody: smtp-sink drops root after binding; -m: enough concurrency.
    "$SMTP_SINK" -c -u nobody -m 512 "127.0.0.1:$port" 1024 > "$d/sink.fifo" 2> "$d/sink.err" &
    SINK_PID=$!
    bench_track $SINK_PID
    bench_wait_port "$port" 10 || { cat "$d/sink.err" >&2; bench_die "smtp-sink did not start on port $port"; }
}

# sink_wait DIR DEADLINE_EPOCH [PID]: waits for DIR/sink.reached; 0 when it
# came. Gives up at the deadline, when the sink or PID (the relay under test)
# has died, or when the sink's count has not moved for BENCH_STALL seconds
# (default 60: a relay that deferred mail to a later retry). Sets SINK_WHY.
sink_wait() {
    local d=$1 deadline=$2 pid=${3:-} last=-1 cur since now
    since=$(date +%s)
    SINK_WHY=""
    while [ ! -f "$d/sink.reached" ]; do
        now=$(date +%s)
        [ "$now" -ge "$deadline" ] && { SINK_WHY="timeout (${BENCH_TIMEOUT}s)"; return 1; }
        kill -0 "$SINK_PID" 2>/dev/null || { SINK_WHY="smtp-sink exited"; return 1; }
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            sleep 0.5
            [ -f "$d/sink.reached" ] && return 0
            SINK_WHY="the relay (pid $pid) died"
            return 1
        fi
        cur=$(cat "$d/sink.reached.progress" 2>/dev/null)
        if [ "${cur:-0}" != "$last" ]; then
            last=${cur:-0}
            since=$now
        elif [ $((now - since)) -ge "${BENCH_STALL:-60}" ]; then
            SINK_WHY="no progress for ${BENCH_STALL:-60}s at $last messages"
            return 1
        fi
        sleep 0.1
    done
    return 0
}

# sink_stop DIR: stops smtp-sink, lets sinkwatch drain; sets SINK_COUNT.
sink_stop() {
    local d=$1
    bench_kill "$SINK_PID"
    wait "$SINKWATCH_PID" 2>/dev/null
    SINK_COUNT=$(sed -n 's/^mesg=\([0-9]*\).*/\1/p' "$d/sink.final" | tail -1)
    SINK_COUNT=${SINK_COUNT:-0}
}

# run_source PORT COUNT SIZE LOGPREFIX: the injector (one message per
# session, BENCH_SESSIONS in parallel), bounded in time. Sets SOURCE_RC and
# SOURCE_COUNT (DATA commands completed, from its -c counter). Output goes to
# LOGPREFIX.out / .err.
run_source() {
    local port=$1 count=$2 size=$3 log=$4
    timeout "$BENCH_TIMEOUT" "$SMTP_SOURCE" -c -s "$BENCH_SESSIONS" -m "$count" -l "$size" \
        -f a@bench.test -t b@example.test "127.0.0.1:$port" > "$log.out" 2> "$log.err"
    SOURCE_RC=$?
    SOURCE_COUNT=$(tr '\r' '\n' < "$log.out" | grep -E '^[0-9]+$' | tail -1)
    SOURCE_COUNT=${SOURCE_COUNT:-0}
    if [ "$SOURCE_RC" -ne 0 ] || [ -s "$log.err" ]; then
        bench_loud "smtp-source to port $port exited $SOURCE_RC: $(head -3 "$log.err" | tr '\n' ' ')"
    fi
}
