#!/bin/sh
# modules_connlog.sh: connlog writes one JSON line per allowed connection, matching what the sink saw (source, destination, binding, slot, domain, verdict); vetoed ones are absent; SIGHUP reopens the file.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
for m in connlog netacl; do
    [ -e "$MODDIR/$m.la" ] || vt_skip "the $m module is not built in $MODDIR"
done
VIPMTA=$VIPMTA_TOP_BUILDDIR/core/vipmta
SINK=$(vt_free_port)
INNER=$(vt_free_port)
vt_start_sink sink "$SINK"
vt_start_sink inner "127.0.0.9:$INNER"
CONNLOG=$VT_DIR/connections.jsonl

vt_log "vipmta -t reports connlog's option errors with their paths"
cat >"$VT_DIR/bad.json" <<EOF
{
  "hostname": "mta.connlog.test",
  "spool_dir": "$VT_DIR/spool",
  "module_path": ["$MODDIR"],
  "modules": [
    {"name": "connlog", "options": {"file": "$CONNLOG", "syslog": true}},
    {"name": "netacl", "options": {}}
  ]
}
EOF
out=$("$VIPMTA" -t -c "$VT_DIR/bad.json" 2>&1) && vt_fail "vipmta -t accepted both file and syslog: $out"
vt_assert_eq "vipmta -t on file + syslog" \
    'modules[0].options: set either "file" or "syslog": true, not both' "$out"
[ ! -e "$CONNLOG" ] || vt_fail "vipmta -t created the log file"
sed 's/"syslog": true/"flush_interval_ms": 20000/' "$VT_DIR/bad.json" >"$VT_DIR/bad2.json"
out=$("$VIPMTA" -t -c "$VT_DIR/bad2.json" 2>&1) && vt_fail "vipmta -t accepted flush_interval_ms 20000: $out"
vt_assert_eq "vipmta -t on flush_interval_ms 20000" \
    'modules[0].options.flush_interval_ms: must be an integer from 0 to 10000, not 20000' "$out"

# connlog is listed FIRST, netacl second: netacl registers with _first, connlog with
# _last, so netacl still runs before connlog and connlog never sees a vetoed connection.
# vip3's mail for inner.test goes to 127.0.0.9, which netacl denies.
dl_config "{
  \"bindings\": {
    \"vip1\": {\"address\": \"127.0.0.2\", \"ehlo\": \"vip1.connlog.test\"},
    \"vip2\": {\"address\": \"127.0.0.3\", \"ehlo\": \"vip2.connlog.test\"},
    \"vip3\": {\"address\": \"127.0.0.4\", \"ehlo\": \"vip3.connlog.test\"}
  },
  \"binding_rules\": [
    {\"recipient_domain\": \"one.test\", \"binding\": \"vip1\"},
    {\"recipient_domain\": \"two.test\", \"binding\": \"vip2\"},
    {\"recipient_domain\": \"three.test\", \"binding\": \"vip3\"},
    {\"recipient_domain\": \"inner.test\", \"binding\": \"vip3\"},
    {\"recipient_domain\": \"four.test\", \"binding\": \"vip1\"}
  ],
  \"routes\": {\"inner.test\": \"127.0.0.9:$INNER\", \"*\": \"127.0.0.1:$SINK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [3600], \"veto_retry\": 1}},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [
    {\"name\": \"connlog\", \"options\": {\"file\": \"$CONNLOG\"}},
    {\"name\": \"netacl\", \"options\": {\"rules\": [{\"action\": \"deny\", \"cidr\": \"127.0.0.9/32\", \"comment\": \"internal\"}]}}
  ]
}"
vt_start_daemon "$DL_CONF"
vt_assert_file_contains "connlog's start line" "$VT_DAEMON_LOG" "info [connlog] logging connections to $CONNLOG"
[ -f "$CONNLOG" ] || vt_fail "connlog did not create $CONNLOG at start"
vt_assert_eq "lines in the log before any mail" 0 "$(wc -l <"$CONNLOG")"

# connlog_check FILE SINK_NAME SINK_PORT DOMAINS: every line of FILE is a JSON object with
# exactly connlog's fields; there is one line per connection the sink recorded (for
# the given domains), and each matches it: domain, binding and slot (from the source
# address), source address (port 0: the kernel picks it at connect(), after the hook),
# destination, verdict "allow", a time no later than the connection. The delivery
# log's "delivered" line for the connection's recipient has the sink's peer port.
connlog_check() {
    "$VT_PYTHON" - "$1" "$VT_DIR/$2.jsonl" "$3" "$DL_LOG" "$4" <<'EOF'
import datetime, json, re, sys
path, sink, port, dlog, domains = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5].split(",")
FIELDS = ["time", "domain", "binding", "slot", "source", "destination", "fd", "verdict"]
BY_PEER = {"127.0.0.2": ("vip1", 1), "127.0.0.3": ("vip2", 2), "127.0.0.4": ("vip3", 3)}
bad = []
lines = []
with open(path, encoding="utf-8") as f:
    raw = f.read()
if raw and not raw.endswith("\n"):
    bad.append("the file does not end with a newline")
for n, text in enumerate(raw.splitlines(), 1):
    try:
        rec = json.loads(text, object_pairs_hook=lambda kv: kv)
    except ValueError as e:
        bad.append("line %d is not JSON (%s): %s" % (n, e, text))
        continue
    if not isinstance(rec, list) or [k for k, _ in rec] != FIELDS:
        bad.append("line %d: expected the fields %s in that order: %s" % (n, FIELDS, text))
        continue
    rec = dict(rec)
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["time"]):
        bad.append("line %d: time %r is not UTC with milliseconds" % (n, rec["time"]))
        continue
    if not isinstance(rec["fd"], int) or isinstance(rec["fd"], bool) or rec["fd"] < 0:
        bad.append("line %d: fd %r" % (n, rec["fd"]))
    rec["t"] = datetime.datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    lines.append(rec)

sink_recs = [json.loads(l) for l in open(sink, encoding="utf-8") if l.strip()]
connects = {r["conn"]: r for r in sink_recs if r["event"] == "connect"}
domain_of = {}
for r in sink_recs:
    if r["event"] == "message":
        for rcpt in r["rcpts"]:
            domain_of.setdefault(r["conn"], set()).add(rcpt.rsplit("@", 1)[1])
delivered = [json.loads(l) for l in open(dlog, encoding="utf-8") if l.strip()]
delivered = [r for r in delivered if r.get("outcome") == "delivered"]

expected = []
for conn, c in sorted(connects.items()):
    doms = domain_of.get(conn, set())
    if len(doms) != 1:
        bad.append("sink connection %d carried mail for %s, not one domain" % (conn, sorted(doms) or "no"))
        continue
    dom = doms.pop()
    if dom in domains:
        expected.append((conn, c, dom))
if len(lines) != len(expected):
    bad.append("%d line(s) in %s for %d connection(s) at the sink to %s" %
               (len(lines), path, len(expected), ",".join(domains)))
left = list(lines)
for conn, c, dom in expected:
    binding, slot = BY_PEER.get(c["peer"], ("?", -1))
    want = {"domain": dom, "binding": binding, "slot": slot, "source": "%s:0" % c["peer"],
            "destination": "%s:%d" % (c["local"].rsplit(":", 1)[0], port), "verdict": "allow"}
    match = [r for r in left if all(r[k] == v for k, v in want.items())]
    if len(match) != 1:
        bad.append("sink connection %d (%s:%d, domain %s): %d matching line(s), wanted one with %s" %
                   (conn, c["peer"], c["peer_port"], dom, len(match), want))
        continue
    r = match[0]
    left.remove(r)
    if not (c["t"] - 5 <= r["t"] <= c["t"] + 0.05):
        bad.append("sink connection %d at %.3f, its line at %s" % (conn, c["t"], r["time"]))
    src = "%s:%d" % (c["peer"], c["peer_port"])
    d = [x for x in delivered if x["domain"] == dom and x["source"] == src]
    if not d:
        bad.append("no delivered line in the delivery log for %s from %s" % (dom, src))
    elif any((x["binding"], x["slot"]) != (binding, slot) for x in d):
        bad.append("the delivery log's binding for %s from %s differs from connlog's %s/%d" %
                   (dom, src, binding, slot))
for r in left:
    bad.append("a line no sink connection explains: %s" % json.dumps({k: v for k, v in r.items() if k != "t"}))
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
EOF
}

vt_log "four messages: three bindings to the sink, one vetoed by netacl"
dl_send sender@src.test a@one.test "one"
dl_send sender@src.test b@two.test "two"
dl_send sender@src.test c@three.test "three"
dl_send sender@src.test d@inner.test "inner"
vt_sink_wait sink 3 30 message >/dev/null || vt_fail "the sink got $(vt_sink_count sink message) of 3 messages"
dl_wait 3 30 outcome delivered || vt_fail "$(dl_count outcome delivered) of 3 delivered lines"
dl_wait_vetoes 2 20 vip3 || vt_fail "inner.test was not vetoed twice"
dl_wait 1 20 outcome vetoed domain inner.test binding vip3 || vt_fail "no veto line for inner.test"
vt_assert_eq "connections at the denied sink" 0 "$(vt_sink_count inner connect)"
out=$(connlog_check "$CONNLOG" sink "$SINK" one.test,two.test,three.test) || vt_fail "connlog lines vs the sink: $out"
vt_assert_eq "connlog lines for the vetoed inner.test" 0 "$(grep -c '"domain":"inner.test"' "$CONNLOG")"
vt_assert_eq "connlog lines in all" 3 "$(wc -l <"$CONNLOG")"
vt_assert_eq "the post-bind chain per vipmta -M (netacl first although listed after connlog)" \
    "1 netacl 2 connlog" "$("$VIPMTA" -M -c "$DL_CONF" 2>&1 |
        awk '/^[a-z]/ { name = $1 } /hook core_connection_post_bind/ { print $4, name }' | sort -n | tr '\n' ' ' | sed 's/ $//')"

vt_log "rotation: rename the file, SIGHUP, more mail: the new lines go to the new file"
mv "$CONNLOG" "$CONNLOG.1" || vt_error "cannot rename $CONNLOG"
vt_signal_daemon HUP
vt_wait_until 20 grep -q "info \[connlog\] SIGHUP: reopened $CONNLOG\$" "$VT_DAEMON_LOG" ||
    vt_fail "no 'SIGHUP: reopened' line from connlog"
vt_wait_until 20 grep -qF "reload: applied $DL_CONF (bindings 4->4)" "$VT_DAEMON_LOG" ||
    vt_fail "the core's own SIGHUP handling still runs: no 'reload: applied $DL_CONF (bindings 4->4)'"
[ -f "$CONNLOG" ] || vt_fail "connlog did not create a new $CONNLOG on SIGHUP"
dl_send sender@src.test e@four.test "four"
vt_sink_wait sink 4 30 message >/dev/null || vt_fail "the sink got $(vt_sink_count sink message) of 4 messages"
dl_wait 4 30 outcome delivered || vt_fail "$(dl_count outcome delivered) of 4 delivered lines"
out=$(connlog_check "$CONNLOG" sink "$SINK" four.test) || vt_fail "the new file vs the sink: $out"
out=$(connlog_check "$CONNLOG.1" sink "$SINK" one.test,two.test,three.test) || vt_fail "the renamed file changed: $out"
vt_assert_eq "lines in the new file" 1 "$(wc -l <"$CONNLOG")"
vt_assert_eq "lines in the renamed file" 3 "$(wc -l <"$CONNLOG.1")"
vt_stop_daemon || vt_fail "the daemon exited with status $?"

vt_log "buffered (flush_interval_ms 300): lines arrive within the interval, all of them by shutdown"
"$VT_PYTHON" - "$DL_CONF" <<'PY' || vt_error "cannot rewrite $DL_CONF"
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["modules"][0]["options"]["flush_interval_ms"] = 300
json.dump(cfg, open(sys.argv[1], "w"), indent=2)
PY
conns_before=$(vt_sink_count sink connect)
vt_start_daemon "$DL_CONF"
vt_assert_file_contains "connlog says it buffers" "$VT_DAEMON_LOG" \
    "info [connlog] lines buffered, written within 300 ms"
dl_send sender@src.test f@four.test "five" 3
vt_sink_wait sink 7 30 message >/dev/null || vt_fail "the sink got $(vt_sink_count sink message) of 7 messages"
vt_wait_until 10 sh -c "[ \$(grep -c '\"domain\":\"four.test\"' '$CONNLOG') -ge 2 ]" ||
    vt_fail "the buffered line for four.test never reached $CONNLOG"
dl_wait 7 30 outcome delivered || vt_fail "$(dl_count outcome delivered) of 7 delivered lines"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
vt_assert_eq "lines in the file: one before, one per new connection at the sink" \
    "$((1 + $(vt_sink_count sink connect) - conns_before))" "$(wc -l <"$CONNLOG")"
"$VT_PYTHON" -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert r["domain"] == "four.test" and r["binding"] == "vip1" and r["verdict"] == "allow", r' \
    "$CONNLOG" || vt_fail "a buffered line is not a whole JSON line for four.test from vip1"
