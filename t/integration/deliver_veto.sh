#!/bin/sh
# deliver_veto.sh: the example module vetoes every connection after bind: no connection reaches the sink, mail stays queued and is retried after veto_retry, not on the retry schedule; the delivery log says so once per episode, not per recipient and try.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
[ -e "$MODDIR/example.la" ] || [ -e "$MODDIR/.libs/example.so" ] || [ -e "$MODDIR/example.so" ] ||
    vt_skip "the example module is not built in $MODDIR"
SINK=$(vt_free_port)
vt_start_sink sink "$SINK"
dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}},
  \"binding_rules\": [{\"recipient_domain\": \"veto.test\", \"binding\": \"vip1\"}],
  \"routes\": {\"*\": [\"127.0.0.1:$SINK\", \"127.0.0.1:$SINK\"]},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"example\", \"enabled\": true, \"options\": {\"veto\": true}}],
  \"domains\": {\"*\": {\"retry_schedule\": [3600], \"veto_retry\": 1}}
}"
vt_start_daemon "$DL_CONF"

dl_send sender@src.test user@veto.test "vetoed"
id=$(dl_spool_ids)
[ -n "$id" ] || vt_fail "no message in the spool after acceptance"

vt_log "every attempt is vetoed (two route hosts each), and retried after veto_retry (1 s), not the schedule (3600 s)"
dl_wait_vetoes 6 20 vip1 || vt_fail "fewer than 6 vetoes of vip1 (3 rounds): $(dl_vetoes vip1)"
vt_log "one delivery log line for the episode, holding the recipient; none per recipient and try"
vt_assert_eq "vetoed lines" 1 "$(dl_count outcome vetoed domain veto.test binding vip1 id null)"
vt_assert_match "its reason" "451 4.4.5 all 2 destinations failed; last: connection to 127.0.0.1:$SINK from binding \"vip1\" vetoed by module \"example\" (returned *)" \
    "$(dl_get reply outcome vetoed)"
vt_assert_eq "recipients it holds" 1 "$(dl_get waiting outcome vetoed)"
vt_assert_eq "per-recipient lines" 0 "$(dl_count rcpt user@veto.test)"
grep -q 'notice \[delivery\] veto.test (binding vip1): 1 recipients wait, vetoed 1 time(s) in 0 s, tried again every 1 s: 451 4.4.5 all 2 destinations failed; last: connection to 127.0.0.1:'"$SINK"' from binding "vip1" vetoed by module "example" (returned' "$VT_DAEMON_LOG" ||
    vt_fail "no notice line naming the module in the main log"

vt_log "200 more held recipients: each veto round costs no line per recipient"
dl_send sender@src.test more@veto.test "more" 200
before=$(dl_vetoes vip1)
dl_wait_vetoes $((before + 6)) 20 vip1 || vt_fail "the vetoes stopped: $(dl_vetoes vip1)"
vt_assert_eq "delivery log lines after $((before + 6)) vetoes (one per episode)" 1 "$(grep -c . "$DL_LOG")"
vt_assert_eq "per-recipient lines" 0 "$(dl_count rcpt more@veto.test)"

vt_log "nothing reached the sink; the message stays queued; vetoes write no deferral records"
[ ! -e "$VT_DIR/spool/queue/$id.st" ] || vt_fail "a veto wrote $id.st: $(cat "$VT_DIR/spool/queue/$id.st")"
vt_assert_eq "connections at the sink" 0 "$(vt_sink_count sink connect)"
vt_assert_eq "delivered or bounced lines" 0 "$(($(dl_count outcome delivered) + $(dl_count outcome bounced)))"
if [ ! -f "$VT_DIR/spool/queue/$id.env" ] || [ ! -f "$VT_DIR/spool/queue/$id.body" ]; then
    vt_fail "$id left the spool"
fi
vt_stop_daemon || vt_fail "the daemon exited with status $?"
[ -f "$VT_DIR/spool/queue/$id.env" ] || vt_fail "$id left the spool at shutdown"
