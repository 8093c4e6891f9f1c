#!/bin/sh
# faults.sh: fault injection for the integration scenarios: the daemon runs with t/lib/faultinject.so preloaded and reads its rules from a file.
# Sourced after harness.sh (see t/lib/README.md, "Fault injection"); the rule
# syntax is in t/lib/faultinject.h.

# vt_faults_init: from the next vt_start_daemon on, the daemon runs with the
# shim preloaded, reading its rules from $VT_FAULTS_FILE (none at first) and
# logging each injected fault to $VT_FAULTS_LOG. Skips (77) when the shim is
# not built or when another wrapper (valgrind) runs the daemon.
vt_faults_init() {
    VT_FAULTS_SO=$VIPMTA_TOP_BUILDDIR/t/lib/.libs/faultinject.so
    [ -f "$VT_FAULTS_SO" ] || vt_skip "the fault-injection shim is not built ($VT_FAULTS_SO; make check builds it)"
    [ -z "${VT_DAEMON_WRAPPER:-}" ] ||
        vt_skip "fault injection runs the daemon itself (VT_DAEMON_WRAPPER is set: $VT_DAEMON_WRAPPER)"
    VT_FAULTS_FILE=$VT_DIR/faults.rules
    VT_FAULTS_LOG=$VT_DIR/faults.log
    : >"$VT_FAULTS_FILE"
    : >"$VT_FAULTS_LOG"
    # the shim comes before the sanitizer runtime in the preload order
    VT_DAEMON_WRAPPER="env LD_PRELOAD=$VT_FAULTS_SO VT_FAULTS_FILE=$VT_FAULTS_FILE VT_FAULTS_LOG=$VT_FAULTS_LOG ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

# vt_faults RULES: the rules in force from now on ("" for none); counting
# (nth) starts again. The file is replaced atomically.
vt_faults() {
    printf '%s\n' "$1" >"$VT_FAULTS_FILE.new" && mv "$VT_FAULTS_FILE.new" "$VT_FAULTS_FILE"
}

# vt_faults_fired [WORD]: prints how many faults were injected so far (only
# lines containing WORD, e.g. a function name or "crash").
vt_faults_fired() {
    grep -c -- "${1:-}" "$VT_FAULTS_LOG" 2>/dev/null || true
}

# vt_faults_wait_crash SECONDS: waits until a crash rule killed the daemon,
# then reaps it (restart it with vt_start_daemon). 1 if it is still alive.
vt_faults_wait_crash() {
    vt_wait_until "${1:-30}" sh -c "! kill -0 $VT_DAEMON_PID 2>/dev/null || grep -q '^State:.*Z' /proc/$VT_DAEMON_PID/status 2>/dev/null" ||
        return 1
    vt_kill_daemon
}
