#!/bin/sh
# accept_smtp_source.sh: Postfix smtp-source injects 2,000 messages over 20 sessions without error; all survive kill -9 and restart.
. "$VIPMTA_TOP_SRCDIR/t/integration/accept_lib.sh"

vt_require smtp-source
MESSAGES=2000
SESSIONS=20

vt_init
PORT=$(vt_free_port)
acc_config "$VT_TMP/vipmta.json" "$PORT" '["127.0.0.0/8"]' '[]' '{"max_sessions_per_ip": 50}'
vt_start_daemon "$VT_TMP/vipmta.json"

start=$(date +%s)
vt_smtp_source -d -s "$SESSIONS" -m "$MESSAGES" -l 2048 -f source@accept.test \
    -t sink@example.com -M client.accept.test "127.0.0.1:$PORT" >"$VT_TMP/source.out" 2>&1 ||
    vt_fail "smtp-source failed: $(tail -n 5 "$VT_TMP/source.out")"
end=$(date +%s)
echo "smtp-source: $MESSAGES messages over $SESSIONS sessions in $((end - start)) s"
if grep -Eq 'error|fatal|warning' "$VT_TMP/source.out"; then
    vt_fail "smtp-source reported problems: $(head -n 5 "$VT_TMP/source.out")"
fi

count_spooled() {
    grep -l 'source@accept.test' "$VT_TMP"/spool/queue/*.env 2>/dev/null | wc -l
}
n=$(count_spooled)
vt_assert_eq "messages in the spool after smtp-source" "$MESSAGES" "$n"
accepted=$(grep -c 'accepted from=<source@accept.test>' "$VT_TMP/daemon.log")
vt_assert_eq "'accepted' log lines" "$MESSAGES" "$accepted"

vt_kill_daemon
vt_start_daemon "$VT_TMP/vipmta.json"
acc_spool_check
n=$(count_spooled)
vt_assert_eq "messages in the spool after kill -9 and restart" "$MESSAGES" "$n"
vt_stop_daemon || vt_fail "the daemon did not stop cleanly"
exit 0
