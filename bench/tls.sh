#!/bin/sh
# tls.sh: relay throughput with TLS on both sides (injector -> STARTTLS -> relay -> STARTTLS -> sink), vipmta next to Postfix and a direct reference, each also in clear text, in the same run.
#
# One command: bench/tls.sh   (as root: Postfix needs its accounts)
# Environment (as bench/e2e.sh): BENCH_MESSAGES (20000), BENCH_SIZES ("1024 20480"),
#   BENCH_SESSIONS (20), BENCH_TARGETS ("direct postfix vipmta"), BENCH_MODES ("clear tls"),
#   BENCH_TIMEOUT, BENCH_STALL, BENCH_GAP (20), BENCH_TMPDIR, BENCH_KEEP, VIPMTA,
#   BENCH_PF_TLS_REUSE=1 (Postfix reuses its outbound TLS connections through tlsproxy,
#   smtp_tls_connection_reuse=yes; off by default, as in a stock Postfix).
#
# smtp-source and smtp-sink speak no TLS, so both ends are small C programs built
# here with OpenSSL: tls_source (one message per SMTP session, BENCH_SESSIONS at
# once, STARTTLS with -T, times each handshake) and tls_sink (offers STARTTLS,
# writes smtp-sink -c's counter records, so sinkwatch stamps the Nth message).
# The same two programs serve every row; only TLS is switched on or off:
#   direct  tls_source -> tls_sink
#   postfix tls_source -> Postfix smtpd (smtpd_tls_security_level=may) -> smtp
#           (smtp_tls_security_level=encrypt, session cache) -> tls_sink
#   vipmta  tls_source -> vipmta (listener with a certificate) -> (domains "*":
#           tls "required", session cache) -> tls_sink
# In clear text rows the source does not STARTTLS, Postfix's smtp has
# smtp_tls_security_level=none and vipmta's domains "*" has tls "none".
# Certificates: one EC P-256 test CA and leaf per run, made with openssl.
set -u

bench_dir=$(cd "$(dirname "$0")" && pwd)
. "$bench_dir/common.sh"
. "$bench_dir/postfix.sh"
. "$bench_dir/vipmta.sh"

N=${BENCH_MESSAGES:-20000}
SIZES=${BENCH_SIZES:-"1024 20480"}
TARGETS=${BENCH_TARGETS:-"direct postfix vipmta"}
MODES=${BENCH_MODES:-"clear tls"}
BENCH_GAP=${BENCH_GAP:-20}
PF_BIND=127.0.0.2
VM_BINDS="127.0.0.2 127.0.0.3"

[ "$(id -u)" -eq 0 ] || bench_die "run as root (Postfix needs its accounts)"
command -v openssl >/dev/null || bench_die "the openssl command is needed (scripts/deps)"
bench_need_postfix
root=$(bench_mktemp)
PF_DIR=""
failed=0

cleanup() {
    [ -n "$PF_DIR" ] && pf_stop "$PF_DIR"
    vm_stop
    bench_kill_all
    if [ "${BENCH_KEEP:-0}" = 1 ]; then bench_log "bench: kept $root"; else rm -rf "$root"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$root/bin" "$root/certs"
SINKWATCH=$root/bin/sinkwatch
bench_cc "$bench_dir/sinkwatch.c" "$SINKWATCH"
cc -O2 -pthread -o "$root/bin/tls_source" "$bench_dir/tls_source.c" -lssl -lcrypto ||
    bench_die "cannot build tls_source (libssl-dev)"
cc -O2 -pthread -o "$root/bin/tls_sink" "$bench_dir/tls_sink.c" -lssl -lcrypto ||
    bench_die "cannot build tls_sink (libssl-dev)"

C=$root/certs
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
    -keyout "$C/ca.key" -out "$C/ca.crt" >/dev/null 2>&1 &&
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=relay.bench.test" \
    -keyout "$C/leaf.key" -out "$C/leaf.csr" >/dev/null 2>&1 &&
printf 'subjectAltName=DNS:relay.bench.test,IP:127.0.0.1\n' >"$C/leaf.ext" &&
openssl x509 -req -in "$C/leaf.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial -days 2 \
    -extfile "$C/leaf.ext" -out "$C/leaf.pem" >/dev/null 2>&1 || bench_die "cannot make the test certificates"
cat "$C/ca.crt" >>"$C/leaf.pem"
# the relays read the key as root before dropping privileges; Postfix's smtpd reads it as postfix
chmod 640 "$C/leaf.key"
chmod 755 "$root/certs"

vm_ok=0
if vm_usable; then vm_ok=1; fi

# A free port below the kernel's ephemeral range: tens of thousands of connections
# per run leave ephemeral ports taken (bench_free_port draws from 20000-60000).
tls_free_port() {
    local i=0 p low
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    while [ $i -lt 200 ]; do
        p=$(awk -v s="$$$i$(date +%N)" -v low="$low" 'BEGIN { srand(s % 2147483647); printf "%d", 10000 + int(rand() * (low - 10001)) }')
        if [ -z "$(ss -Hatn "sport = :$p" 2>/dev/null)" ]; then echo "$p"; return 0; fi
        i=$((i + 1))
    done
    bench_die "no free port found"
}

# tls_sink_start DIR PORT TARGET: tls_sink on 127.0.0.1:PORT, its counters to sinkwatch.
tls_sink_start() {
    local d=$1 port=$2 target=$3
    rm -f "$d/sink.fifo" "$d/sink.reached" "$d/sink.reached.progress" "$d/sink.final"
    mkfifo "$d/sink.fifo" || bench_die "mkfifo $d/sink.fifo"
    "$SINKWATCH" "$target" "$d/sink.reached" < "$d/sink.fifo" > "$d/sink.final" &
    SINKWATCH_PID=$!
    bench_track $SINKWATCH_PID
    "$root/bin/tls_sink" -c "$C/leaf.pem" -k "$C/leaf.key" "127.0.0.1:$port" > "$d/sink.fifo" 2> "$d/sink.err" &
    SINK_PID=$!
    bench_track $SINK_PID
    bench_wait_port "$port" 10 || { cat "$d/sink.err" >&2; bench_die "tls_sink did not start on port $port"; }
}

# pf_tls DIR MODE: Postfix's TLS settings for the run (tlsmgr for the session caches).
pf_tls() {
    local d=$1 mode=$2
    if [ "$mode" = tls ]; then
        pf_postconf "$d" -e "smtpd_tls_cert_file=$C/leaf.pem" "smtpd_tls_key_file=$C/leaf.key" \
            "smtpd_tls_security_level=may" "smtp_tls_security_level=encrypt" \
            "smtpd_tls_session_cache_database=btree:$d/data/smtpd_scache" \
            "smtp_tls_session_cache_database=btree:$d/data/smtp_scache" ||
            bench_die "postconf -e (TLS)"
        echo "tlsmgr    unix  -       -       n       1000?   1       tlsmgr" >> "$d/etc/master.cf"
        if [ "${BENCH_PF_TLS_REUSE:-0}" = 1 ]; then
            # Postfix keeps TLS connections open for reuse only through tlsproxy
            pf_postconf "$d" -e "smtp_tls_connection_reuse=yes" || bench_die "postconf -e (reuse)"
            echo "tlsproxy  unix  -       -       n       -       0       tlsproxy" >> "$d/etc/master.cf"
        fi
    else
        pf_postconf "$d" -e "smtp_tls_security_level=none" "smtpd_tls_security_level=none" ||
            bench_die "postconf -e (clear)"
    fi
}

# run_one TARGET MODE SIZE: sets R_RATE R_SECS R_COUNT R_HS R_NOTE
run_one() {
    local target=$1 mode=$2 size=$3 d sinkport port t0 t1 deadline relay_pid tflag=""
    d=$root/$target-$mode-$size
    mkdir -p "$d"
    R_RATE=n/a R_SECS=n/a R_COUNT=0 R_HS=- R_NOTE=""
    [ "$mode" = tls ] && tflag=-T
    if [ "$target" = vipmta ] && [ $vm_ok != 1 ]; then
        R_NOTE="to be measured: $VM_WHY"
        return 1
    fi
    sinkport=$(tls_free_port)
    tls_sink_start "$d" "$sinkport" "$N"
    relay_pid=""
    case $target in
        direct) port=$sinkport ;;
        postfix)
            port=$(tls_free_port)
            PF_DIR=$d/pf
            pf_setup "$PF_DIR" "$port" "$sinkport" "$PF_BIND"
            pf_tls "$PF_DIR" "$mode"
            pf_start "$PF_DIR"
            relay_pid=$PF_MASTER_PID
            ;;
        vipmta)
            port=$(tls_free_port)
            if [ "$mode" = tls ]; then
                BENCH_VIPMTA_LISTEN_EXTRA="\"certificates\": [{\"cert\": \"$C/leaf.pem\", \"key\": \"$C/leaf.key\"}]" \
                BENCH_VIPMTA_CONFIG_EXTRA='"domains": {"*": {"tls": "required"}}' \
                    vm_config "$d/vipmta.json" "$port" "$d/spool" "127.0.0.1:$sinkport" "$VM_BINDS"
            else
                BENCH_VIPMTA_CONFIG_EXTRA='"domains": {"*": {"tls": "none"}}' \
                    vm_config "$d/vipmta.json" "$port" "$d/spool" "127.0.0.1:$sinkport" "$VM_BINDS"
            fi
            if ! vm_start "$d/vipmta.json" "$d/vipmta.log"; then
                bench_kill "$SINK_PID"
                R_NOTE="vipmta did not start (log: $d/vipmta.log)"
                return 1
            fi
            relay_pid=$VM_PID
            ;;
    esac
    t0=$(bench_now)
    timeout "$BENCH_TIMEOUT" "$root/bin/tls_source" $tflag -s "$BENCH_SESSIONS" -m "$N" -l "$size" \
        "127.0.0.1:$port" > "$d/source.out" 2> "$d/source.err" ||
        bench_loud "tls_source to $target ($mode) failed: $(cat "$d/source.out" "$d/source.err" | head -3 | tr '\n' ' ')"
    R_HS=$(sed -n 's/.*handshake_us_avg=\([0-9]*\).*/\1/p' "$d/source.out")
    [ "$mode" = tls ] || R_HS=-
    deadline=$(( $(date +%s) + BENCH_TIMEOUT ))
    if sink_wait "$d" "$deadline" "$relay_pid"; then
        t1=$(cat "$d/sink.reached")
        R_SECS=$(bench_secs "$t0" "$t1")
        R_RATE=$(bench_rate "$N" "$t0" "$t1")
        sleep 1
    else
        R_NOTE="sink never reached $N messages: $SINK_WHY"
    fi
    bench_kill "$SINK_PID"
    wait "$SINKWATCH_PID" 2>/dev/null
    R_COUNT=$(sed -n 's/^mesg=\([0-9]*\).*/\1/p' "$d/sink.final" | tail -1)
    R_COUNT=${R_COUNT:-0}
    R_SINKTLS=$(sed -n 's/^tls_sink: //p' "$d/sink.err" | tail -1)
    case $target in
        postfix) pf_stop "$PF_DIR"; PF_DIR="" ;;
        vipmta) vm_stop ;;
    esac
    if [ "$R_COUNT" != "$N" ]; then
        bench_loud "$target $mode, $size B: the sink received $R_COUNT messages, expected $N${R_NOTE:+ ($R_NOTE)}"
        failed=1
    fi
    return 0
}

# extra milliseconds of wall time per message that TLS costs at this concurrency
per_msg_cost() {
    awk -v c="$1" -v t="$2" 'BEGIN { if (c + 0 <= 0 || t + 0 <= 0) print "n/a"; else printf "%.2f", 1000 / t - 1000 / c }'
}

echo "vipmta TLS bench: $N messages per run, $BENCH_SESSIONS sessions, one message per session, sizes: $SIZES"
echo "host: $(nproc) CPUs, $(uname -r), $(openssl version), temp dir $root"
echo "postfix: $("$PF_SBIN/postconf" -d -h mail_version 2>/dev/null) from $PF_ROOT; vipmta: $VIPMTA"
[ $vm_ok = 1 ] || echo "vipmta: not run: $VM_WHY"
echo

for size in $SIZES; do
    for target in $TARGETS; do
        for mode in $MODES; do
            sync
            sleep "$BENCH_GAP"
            run_one "$target" "$mode" "$size"
            eval "rate_${target}_$mode=\$R_RATE"
            printf '%-8s %-5s %6s B  %9s msgs/s  %9s s  sink got %6s/%s  source handshake %5s us  sink: %s%s\n' \
                "$target" "$mode" "$size" "$R_RATE" "$R_SECS" "$R_COUNT" "$N" "$R_HS" "${R_SINKTLS:--}" \
                "${R_NOTE:+  [$R_NOTE]}"
        done
    done
    for target in $TARGETS; do
        eval "c=\${rate_${target}_clear:-}; t=\${rate_${target}_tls:-}"
        printf '%-8s %6s B  tls/clear = %s   TLS costs %s ms more per message (wall, %s sessions)\n' \
            "$target" "$size" "$(bench_ratio "$t" "$c")" "$(per_msg_cost "$c" "$t")" "$BENCH_SESSIONS"
    done
    printf 'ratios   %6s B  vipmta/postfix: tls = %s   clear = %s\n\n' "$size" \
        "$(bench_ratio "${rate_vipmta_tls:-}" "${rate_postfix_tls:-}")" \
        "$(bench_ratio "${rate_vipmta_clear:-}" "${rate_postfix_clear:-}")"
done

[ $failed = 0 ] || { bench_loud "at least one run lost or duplicated messages: see above"; exit 1; }
exit 0
