#!/bin/sh
# bounce_crash.sh: the daemon crashes (SIGKILL) at each step of a bounce; after the restart the failed recipient is bounced and exactly one DSN reaches the sender, and the spool ends empty.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"
. "$VIPMTA_TOP_SRCDIR/t/lib/faults.sh"

dl_init
vt_faults_init
MX=$(vt_free_port)
BACK=$(vt_free_port)
mkdir -p "$VT_DIR/back-mail"
vt_start_sink mx "$MX" --rule 'rcpt:bad@*=550 5.1.1 no such user here'
dl_config "{
  \"routes\": {\"bounce.test\": \"127.0.0.1:$MX\", \"sender.test\": \"127.0.0.1:$BACK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [1]}}
}"

# DSNs in the back sink's saved mail that report the message TAG
dsns_for() {
    grep -l -- "X-Test-Id: $1" "$VT_DIR"/back-mail/*.eml 2>/dev/null | wc -l
}

spool_empty() {
    [ -z "$(ls "$VT_DIR/spool/queue")" ]
}

# The crash points, in the order a bounce reaches them (the original's own
# commit is the first fdatasync of an ID.env; the bounce appends F, then B):
n=0
for point in \
    "openat path=*/queue/*.st crash|before its F record" \
    "fdatasync path=*/queue/*.st crash|F written, not yet synced" \
    "write path=*/queue/*.env nth=2 crash|F durable, the DSN's envelope not written" \
    "fdatasync path=*/queue/*.env nth=2 crash|the DSN written, not yet synced" \
    "write path=*/queue/*.st nth=2 crash|the DSN durable, no B record" \
    "fdatasync path=*/queue/*.st nth=2 crash|B written, not yet synced" \
    "unlinkat path=*/queue/*.env crash|B durable, the original being removed"
do
    n=$((n + 1))
    rule=${point%%|*}
    vt_log "--- crash $n: $rule (${point#*|})"
    # the sender's domain is unreachable until after the restart: no DSN can
    # be delivered (and removed) before the crash
    vt_faults "$rule"
    vt_start_daemon "$DL_CONF"
    dl_send alice@sender.test bad@bounce.test "crash $n"
    vt_faults_wait_crash 30 || vt_fail "crash $n: the daemon did not reach $rule"
    vt_assert_eq "crash $n: injected" "$n" "$(vt_faults_fired crash)"
    vt_faults ""
    vt_start_daemon "$DL_CONF"
    vt_start_sink back "$BACK" --save-dir "$VT_DIR/back-mail"
    vt_wait_until 30 sh -c "[ \$(grep -l -- 'X-Test-Id: crash $n' '$VT_DIR'/back-mail/*.eml 2>/dev/null | wc -l) -ge 1 ]" ||
        vt_fail "crash $n: no DSN after the restart"
    vt_wait_until 20 spool_empty || vt_fail "crash $n: spool not empty: $(ls "$VT_DIR/spool/queue")"
    sleep 1 # a second DSN would be on its way by now
    vt_assert_eq "crash $n: DSNs" 1 "$(dsns_for "crash $n")"
    vt_stop_daemon || vt_fail "crash $n: the daemon did not stop cleanly"
    vt_stop_sink back
done
vt_assert_eq "bad@ never accepted" 0 "$(vt_sink_count mx message)"
vt_assert_file_contains "recovery settled a bounce from its DSN" "$VT_DAEMON_LOG" \
    "was spooled before the stop: bounced"
