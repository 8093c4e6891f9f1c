#!/bin/sh
# spool_faults.sh: a commit whose write or sync fails (body, envelope, fdatasync, the directory's fsync, syncfs) answers 451 and leaves nothing; after a restart every 250 is delivered once and no 451 ever.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"
. "$VIPMTA_TOP_SRCDIR/t/lib/faults.sh"

dl_init
vt_faults_init
SINK=$(vt_free_port)
vt_start_sink sink "$SINK"
config() {
    dl_config "{\"routes\": {\"dest.test\": \"127.0.0.1:$SINK\"}, \"spool_sync\": \"$1\"}"
}
config fsync
vt_start_daemon "$DL_CONF"

# send TAG: one message (X-Test-Id: TAG) over its own session; prints the
# reply to the end of DATA (or to the command refused before it).
send() {
    "$VT_PYTHON" - "$DL_PORT" "$1" <<'EOF'
import smtplib, sys
port, tag = int(sys.argv[1]), sys.argv[2]
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.faults.test", timeout=30)
s.ehlo()
msg = ("From: a@src.test\r\nTo: r@dest.test\r\nSubject: %s\r\nX-Test-Id: %s\r\n\r\nHello.\r\n"
       % (tag, tag)).encode()
try:
    s.sendmail("a@src.test", ["r@dest.test"], msg)
    print("250")
except smtplib.SMTPResponseException as e:
    print("%d %s" % (e.smtp_code, e.smtp_error.decode(errors="replace")))
try:
    s.quit()
except smtplib.SMTPException:
    pass
EOF
}

# no file of the spool holds TAG
spool_has() {
    grep -l -- "$1" "$VT_DIR"/spool/queue/* >/dev/null 2>&1
}

spool_empty() {
    [ -z "$(ls "$VT_DIR/spool/queue")" ]
}

n=0
check_case() { # RULE
    n=$((n + 1))
    # an empty spool first: the directory fsync of a removal must not take the fault
    vt_wait_until 20 spool_empty || vt_fail "the spool did not drain before case $n"
    fired=$(vt_faults_fired)
    vt_faults "$1"
    reply=$(send "fail-$n")
    vt_faults ""
    vt_log "$1: $reply"
    vt_assert_match "reply to a commit that failed ($1)" "451 4.3.0*" "$reply"
    vt_assert_eq "faults injected ($1)" $((fired + 1)) "$(vt_faults_fired)"
    if spool_has "fail-$n"; then
        vt_fail "$1: the refused message left files in the spool: $(ls "$VT_DIR/spool/queue")"
    fi
    vt_assert_eq "the next message ($1)" 250 "$(send "ok-$n")"
}

vt_log "--- each durability step of a commit fails once"
check_case "openat path=*/queue/*.body errno=EDQUOT"
check_case "write path=*/queue/*.body errno=ENOSPC"
check_case "openat path=*/queue/*.env errno=EDQUOT"
check_case "write path=*/queue/*.env errno=ENOSPC"
check_case "fdatasync path=*/queue/*.body errno=EIO"
check_case "fdatasync path=*/queue/*.env errno=EIO"
check_case "fsync path=*/queue errno=EIO"
vt_assert_file_contains "the log names the failed commit" "$VT_DIR/vipmta.log" "451 4.3.0"

vt_log "--- spool_sync syncfs: the syncfs fails"
vt_wait_until 20 spool_empty || vt_fail "the spool did not drain"
vt_stop_daemon || vt_fail "the daemon did not stop cleanly"
config syncfs
vt_start_daemon "$DL_CONF"
check_case "syncfs errno=EIO"

vt_log "--- after a restart: every acknowledged message delivered once, no refused one"
vt_stop_daemon || vt_fail "the daemon did not stop cleanly"
vt_start_daemon "$DL_CONF"
vt_sink_wait sink "$n" 30 message >/dev/null || vt_fail "not every acknowledged message was delivered"
i=1
while [ "$i" -le "$n" ]; do
    vt_assert_eq "ok-$i delivered once" 1 "$(vt_sink_count sink message headers.x-test-id "ok-$i")"
    vt_assert_eq "fail-$i never delivered" 0 "$(vt_sink_count sink message headers.x-test-id "fail-$i")"
    i=$((i + 1))
done
vt_wait_until 20 spool_empty || vt_fail "spool not empty at the end: $(ls "$VT_DIR/spool/queue")"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
exit 0
