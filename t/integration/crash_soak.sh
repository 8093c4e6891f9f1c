#!/bin/sh
# crash_soak.sh: mail injected non-stop while the daemon is SIGKILLed and restarted (20 times by default); every acknowledged message is delivered, duplicates stay within what was in flight at each kill.
# Short CI form by default; the long form: SOAK_KILLS=200 SOAK_SECONDS=600 (see docs/soak.md).
# Knobs: SOAK_KILLS (20), SOAK_SECONDS (50), SOAK_SEED (random; printed), SOAK_CLIENTS (4),
#        SOAK_MAX_QUEUE (300), SOAK_EARLY_KILLS (0.15), SOAK_DRAIN (60),
#        SOAK_SIGNAL (KILL; TERM: graceful stops, see term_soak.sh).
. "$VIPMTA_TOP_SRCDIR/t/lib/harness.sh"

vt_init
[ -x "$VIPMTA_TOP_BUILDDIR/core/vipmta" ] || vt_skip "core/vipmta is not built"

IN=$(vt_free_port)
OUT=$(vt_free_port)
vt_start_sink mx "$OUT"

cat >"$VT_DIR/vipmta.json" <<JSON
{
  "hostname": "mta.soak.test",
  "spool_dir": "$VT_DIR/spool",
  "listen": [{"address": "127.0.0.1", "port": $IN}],
  "relay_from": ["127.0.0.0/8"],
  "bindings": {
    "vip1": {"address": "127.0.0.2", "ehlo": "vip1.soak.test"},
    "vip2": {"address": "127.0.0.3", "ehlo": "vip2.soak.test"}
  },
  "binding_groups": {"outbound": ["vip1", "vip2"]},
  "default_binding_group": "outbound",
  "routes": {"*": "127.0.0.1:$OUT"},
  "domains": {"*": {"retry_schedule": [1, 2, 5], "messages_per_connection": 20}},
  "delivery_log": "$VT_DIR/delivery.jsonl",
  "log_level": "info"
}
JSON

SOAK=$VIPMTA_TOP_SRCDIR/t/soak/crash_soak.py
set -- --kills "${SOAK_KILLS:-20}" --seconds "${SOAK_SECONDS:-50}" \
    --clients "${SOAK_CLIENTS:-4}" --max-queue "${SOAK_MAX_QUEUE:-300}" \
    --early-kills "${SOAK_EARLY_KILLS:-0.15}" --drain "${SOAK_DRAIN:-60}" \
    --ready-timeout "${VT_DAEMON_TIMEOUT:-60}" --signal "${SOAK_SIGNAL:-KILL}"
[ -n "${SOAK_SEED:-}" ] && set -- "$@" --seed "$SOAK_SEED"

# the daemon's pid is kept in vipmta-soak.pid while it runs, so the harness's exit
# trap stops it if this script is interrupted
"$VT_PYTHON" "$SOAK" run --daemon "$VIPMTA_TOP_BUILDDIR/core/vipmta" --config "$VT_DIR/vipmta.json" \
    --port "$IN" --spool "$VT_DIR/spool" --log "$VT_DIR/vipmta.log" \
    --pidfile "$VT_DIR/vipmta-soak.pid" --state "$VT_DIR/soak-state.json" "$@"
run=$?
[ -f "$VT_DIR/soak-state.json" ] || vt_error "the soak wrote no state (status $run)"

vt_stop_sink mx          # flushes every record
"$VT_PYTHON" "$SOAK" check --state "$VT_DIR/soak-state.json" --sink "$VT_DIR/mx.jsonl" \
    --spool "$VT_DIR/spool"
check=$?
[ "$check" -eq 1 ] && vt_fail "crash soak: violations (above); replay the kill schedule with SOAK_SEED"
[ "$check" -ne 0 ] || [ "$run" -ne 0 ] && vt_error "crash soak: the harness failed (run $run, check $check)"
exit 0
