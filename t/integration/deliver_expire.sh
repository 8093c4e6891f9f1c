#!/bin/sh
# deliver_expire.sh: a recipient expired by max_queue_lifetime is bounced (4.4.7) in the delivery log, in vipmtactl (status, bindings, domains) and in the metrics alike; its earlier attempts stay deferred.
. "$VIPMTA_TOP_SRCDIR/t/integration/ctl_lib.sh"

dl_init
SINK=$(vt_free_port)
BACK=$(vt_free_port)
MPORT=$(vt_free_port)
mkdir -p "$VT_DIR/back-mail"
vt_start_sink sink "$SINK" --rule 'rcpt:late@*=451 4.7.1 greylisted, try later'
vt_start_sink back "$BACK" --save-dir "$VT_DIR/back-mail"
dl_config "{
  \"routes\": {\"expire.test\": \"127.0.0.1:$SINK\", \"sender.test\": \"127.0.0.1:$BACK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [1], \"max_queue_lifetime\": 3}},
  \"metrics\": {\"address\": \"127.0.0.1\", \"port\": $MPORT}
}"
vt_start_daemon "$DL_CONF"

dl_send alice@sender.test late@expire.test "expires"
dl_wait 1 30 outcome bounced rcpt late@expire.test || vt_fail "late@ never bounced"
vt_sink_wait back 1 30 message mail_from '' rcpts alice@sender.test >/dev/null ||
    vt_fail "no DSN for late@"
sleep 2 # nothing more happens to it
deferred=$(dl_count outcome deferred rcpt late@expire.test)
vt_log "late@: $deferred attempts deferred, then bounced"
[ "$deferred" -ge 2 ] || vt_fail "only $deferred deferred attempts before the expiry"
vt_assert_eq "bounced lines" 1 "$(dl_count outcome bounced rcpt late@expire.test)"
vt_assert_match "the bounced line's reason" "4.4.7 message expired after 0 days in the queue: 451*greylisted*" \
    "$(dl_get reply outcome bounced rcpt late@expire.test)"
vt_assert_eq "lines for late@ (deferred attempts and the bounce)" $((deferred + 1)) \
    "$(dl_count rcpt late@expire.test)"
file=$(vt_sink_get back message file rcpts alice@sender.test)
grep -q '^Status: 4.4.7' "$file" || vt_fail "the DSN does not say 4.4.7: $(cat "$file")"

vt_log "vipmtactl: status, bindings and domains count the same"
ctl_ok --json status
vt_assert_eq "status bounced" 1 "$(ctl_py 'r["bounced"]')"
vt_assert_eq "status deferred" "$deferred" "$(ctl_py 'r["deferred"]')"
ctl_ok --json bindings
vt_assert_eq "binding default bounced" 1 \
    "$(ctl_py '[b["bounced"] for b in r["bindings"] if b["name"] == "default"][0]')"
vt_assert_eq "binding default deferred" "$deferred" \
    "$(ctl_py '[b["deferred"] for b in r["bindings"] if b["name"] == "default"][0]')"
ctl_ok --json domains
vt_assert_eq "expire.test failures" 1 \
    "$(ctl_py '[d["failures"] for d in r["domains"] if d["domain"] == "expire.test"][0]')"
vt_assert_eq "expire.test transients" "$deferred" \
    "$(ctl_py '[d["transients"] for d in r["domains"] if d["domain"] == "expire.test"][0]')"

vt_log "metrics: the same"
"$VT_PYTHON" - "$MPORT" >"$VT_DIR/scrape.txt" <<'EOF' || vt_fail "cannot scrape the metrics"
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10) as r:
    sys.stdout.write(r.read().decode())
EOF
metric() { # NAME-AND-LABELS-GLOB: the value of the one matching sample
    awk -v pat="$1" '$1 ~ pat { print $2 }' "$VT_DIR/scrape.txt"
}
vt_assert_eq "binding metric bounced" 1 \
    "$(metric '^vipmta_binding_recipients_total[{].*binding="default".*outcome="bounced"')"
vt_assert_eq "binding metric deferred" "$deferred" \
    "$(metric '^vipmta_binding_recipients_total[{].*binding="default".*outcome="deferred"')"
vt_assert_eq "domain metric bounced" 1 \
    "$(metric '^vipmta_domain_recipients_total[{]domain="expire.test",outcome="bounced"')"
vt_assert_eq "domain metric deferred" "$deferred" \
    "$(metric '^vipmta_domain_recipients_total[{]domain="expire.test",outcome="deferred"')"
vt_wait_until 10 sh -c "[ -z \"\$(ls '$VT_DIR/spool/queue')\" ]" || vt_fail "spool not empty at the end"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
