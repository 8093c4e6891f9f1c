#!/bin/sh
# metrics.sh: the Prometheus endpoint: scraped and parsed strictly; counters per binding, module, domain match the sink and the delivery log; 404/405; port in use; the per-domain cap.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
[ -e "$MODDIR/netacl.la" ] || vt_skip "the netacl module is not built in $MODDIR"
SINK=$(vt_free_port)
MPORT=$(vt_free_port)
DSNPORT=$(vt_free_port)
DOWN=$(vt_free_port)
N=10
vt_start_sink sink "$SINK"
# the senders' domain (the DSN of the denied message goes there from vip3)
vt_start_sink dsn "127.0.0.6:$DSNPORT"

# metrics_config MAX_DOMAINS: vip1 and vip2 in the default pool, vip3 for
# veto.test, which netacl denies (vip3's default deny: a permanent veto, the
# recipient bounces, its DSN leaves from vip3 to the senders' domain, which
# vip3 may reach); down.test goes nowhere (deferred, an hour's retry), so the
# counts are exact.
metrics_config() {
    dl_config "{
  \"bindings\": {
    \"vip1\": {\"address\": \"127.0.0.2\"},
    \"vip2\": {\"address\": \"127.0.0.3\"},
    \"vip3\": {\"address\": \"127.0.0.4\"}
  },
  \"binding_groups\": {\"pool\": [\"vip1\", \"vip2\"]},
  \"default_binding_group\": \"pool\",
  \"binding_rules\": [{\"recipient_domain\": \"veto.test\", \"binding\": \"vip3\"}],
  \"routes\": {\"src.test\": \"127.0.0.6:$DSNPORT\", \"down.test\": \"127.0.0.1:$DOWN\",
    \"*\": \"127.0.0.1:$SINK\"},
  \"domains\": {\"*\": {\"retry_schedule\": [3600], \"veto_retry\": 3600}},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"netacl\", \"options\": {\"default\": \"allow\"},
    \"bindings\": {\"vip3\": {\"default\": \"deny\",
      \"rules\": [{\"action\": \"allow\", \"cidr\": \"127.0.0.6\"}]}}}],
  \"metrics\": {\"address\": \"127.0.0.1\", \"port\": $MPORT, \"max_domains\": $1}
}"
}

# m_scrape: GET /metrics, check the HTTP answer and parse the exposition
# strictly; the samples go to $VT_DIR/scrape.json. Fails the test on any flaw.
m_scrape() {
    "$VT_PYTHON" - "$MPORT" "$VT_DIR/scrape.txt" "$VT_DIR/scrape.json" <<'EOF' || vt_fail "the scrape is not valid Prometheus text format (above)"
import json, math, re, sys, urllib.request
port, raw_path, out_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
    status, ctype, body = r.status, r.headers.get("Content-Type", ""), r.read()
open(raw_path, "wb").write(body)
def bad(msg):
    sys.exit("scrape: " + msg)
if status != 200:
    bad("status %d" % status)
if not ctype.startswith("text/plain; version=0.0.4"):
    bad("Content-Type %r" % ctype)
text = body.decode("utf-8")
if not text.endswith("\n"):
    bad("no final newline")
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
def parse_value(s):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", s):
        raise ValueError(s)
    return float(s)
def parse_sample(line):
    m = NAME.match(line)
    if not m:
        raise ValueError("no metric name")
    name, i, labels = m.group(0), m.end(), {}
    if i < len(line) and line[i] == "{":
        i += 1
        while line[i] != "}":
            lm = LABEL.match(line, i)
            if not lm or line[lm.end():lm.end() + 2] != '="':
                raise ValueError("bad label at %d" % i)
            key, i, val = lm.group(0), lm.end() + 2, ""
            while line[i] != '"':
                if line[i] == "\\":
                    esc = line[i + 1]
                    if esc not in '\\"n':
                        raise ValueError("bad escape \\%s" % esc)
                    val += "\n" if esc == "n" else esc
                    i += 2
                else:
                    val += line[i]
                    i += 1
            i += 1
            if key in labels:
                raise ValueError("label %s twice" % key)
            labels[key] = val
            if line[i] == ",":
                i += 1
            elif line[i] != "}":
                raise ValueError("expected , or } at %d" % i)
        i += 1
    rest = line[i:]
    if not rest.startswith(" "):
        raise ValueError("no space before the value")
    parts = rest[1:].split(" ")
    if len(parts) not in (1, 2):
        raise ValueError("trailing text")
    return name, labels, parse_value(parts[0])
families, samples, seen, current, done = {}, [], set(), None, set()
for n, line in enumerate(text.split("\n")[:-1], 1):
    where = "line %d [%s]" % (n, line)
    if line.startswith("# HELP "):
        name, _, help_text = line[7:].partition(" ")
        if not NAME.fullmatch(name) or not help_text:
            bad(where + ": bad HELP")
        if name in families:
            bad(where + ": family announced twice")
        if current:
            done.add(current)
        families[name] = {"type": None, "help": help_text}
        current = name
        continue
    if line.startswith("# TYPE "):
        name, _, kind = line[7:].partition(" ")
        if name != current or families[name]["type"] is not None:
            bad(where + ": TYPE not right after its HELP")
        if kind not in ("counter", "gauge", "histogram"):
            bad(where + ": unknown type")
        families[name]["type"] = kind
        continue
    if not line or line.startswith("#"):
        bad(where + ": blank line or stray comment")
    try:
        name, labels, value = parse_sample(line)
    except (ValueError, IndexError) as e:
        bad(where + ": %s" % e)
    fam = name
    if current and families[current]["type"] == "histogram":
        for suffix in ("_bucket", "_sum", "_count"):
            if name == current + suffix:
                fam = current
    if fam != current or families[fam]["type"] is None:
        bad(where + ": sample outside its family (no HELP/TYPE before it, or not contiguous)")
    if not name.startswith("vipmta_"):
        bad(where + ": no vipmta_ prefix")
    kind = families[fam]["type"]
    if kind == "counter" and not name.endswith("_total"):
        bad(where + ": counter without _total")
    if kind in ("counter", "histogram") and (value < 0 or math.isnan(value)):
        bad(where + ": negative counter")
    key = (name, tuple(sorted(labels.items())))
    if key in seen:
        bad(where + ": series twice")
    seen.add(key)
    samples.append({"name": name, "family": fam, "labels": labels, "value": value})
for name, f in families.items():
    if f["type"] is None:
        bad("family %s has no TYPE" % name)
# histograms: buckets in increasing le, counts non-decreasing, +Inf == _count
for name, f in families.items():
    if f["type"] != "histogram":
        continue
    groups = {}
    for s in samples:
        if s["family"] == name:
            rest = tuple(sorted((k, v) for k, v in s["labels"].items() if k != "le"))
            groups.setdefault(rest, []).append(s)
    for rest, ss in groups.items():
        buckets = [s for s in ss if s["name"] == name + "_bucket"]
        count = [s["value"] for s in ss if s["name"] == name + "_count"]
        total = [s["value"] for s in ss if s["name"] == name + "_sum"]
        if not buckets or len(count) != 1 or len(total) != 1:
            bad("%s%s: buckets, _sum and _count required" % (name, rest))
        les = [parse_value(b["labels"]["le"]) for b in buckets]
        if les != sorted(les) or len(set(les)) != len(les) or les[-1] != math.inf:
            bad("%s: le not increasing or no +Inf: %s" % (name, les))
        vals = [b["value"] for b in buckets]
        if vals != sorted(vals):
            bad("%s: buckets not cumulative: %s" % (name, vals))
        if vals[-1] != count[0]:
            bad("%s: +Inf bucket %s != _count %s" % (name, vals[-1], count[0]))
json.dump(samples, open(out_path, "w"))
EOF
}

# m_get NAME [LABEL=VALUE...]: the sum of NAME's samples (last scrape) with those labels.
m_get() {
    "$VT_PYTHON" - "$VT_DIR/scrape.json" "$@" <<'EOF'
import json, sys
samples, name = json.load(open(sys.argv[1])), sys.argv[2]
want = dict(a.split("=", 1) for a in sys.argv[3:])
vals = [s["value"] for s in samples if s["name"] == name
        and all(s["labels"].get(k) == v for k, v in want.items())]
if not vals:
    print("missing")
else:
    t = sum(vals)
    print(int(t) if t == int(t) else t)
EOF
}

# m_http METHOD PATH: the HTTP status of that request.
m_http() {
    "$VT_PYTHON" - "$MPORT" "$1" "$2" <<'EOF'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
c.request(sys.argv[2], sys.argv[3], body=b"x" if sys.argv[2] == "POST" else None)
r = c.getresponse()
r.read()
print(r.status, r.getheader("Allow") or "")
EOF
}

metrics_config 1000
vt_start_daemon "$DL_CONF"
vt_assert_file_contains "the metrics line" "$VT_DAEMON_LOG" "serving http://127.0.0.1:$MPORT/metrics"

vt_log "a fresh daemon: every family is there, counters at zero"
m_scrape
vt_assert_eq "messages accepted at start" 0 "$(m_get vipmta_messages_accepted_total)"
vt_assert_eq "build info" 1 "$(m_get vipmta_build_info)"
vt_assert_eq "bindings listed (default, vip1..3)" 4 \
    "$(grep -c '^vipmta_binding_connections_total{' "$VT_DIR/scrape.txt")"
vt_assert_eq "vip2's slot label" 0 "$(m_get vipmta_binding_connections_total binding=vip2 slot=2)"
vt_assert_eq "the postbind veto family is announced" 1 \
    "$(grep -c '^# TYPE vipmta_postbind_vetoes_total counter$' "$VT_DIR/scrape.txt")"

vt_log "$N messages through the pool, one to veto.test (denied by netacl on vip3: it bounces)"
dl_send sender@src.test user@z.test "pooled" "$N"
dl_send sender@src.test user@veto.test "vetoed"
vt_sink_wait sink "$N" 30 message >/dev/null || vt_fail "the sink got $(vt_sink_count sink message) of $N messages"
dl_wait 1 20 outcome bounced domain veto.test || vt_fail "user@veto.test did not bounce"
vt_sink_wait dsn 1 30 message >/dev/null || vt_fail "the DSN of user@veto.test did not arrive"
dl_wait $((N + 1)) 20 outcome delivered || vt_fail "delivery log: $(dl_count outcome delivered) delivered, want $((N + 1))"
vt_wait_until 10 sh -c "[ \$(ls '$VT_DIR/spool/queue' | grep -c '\\.env\$') -eq 0 ]" ||
    vt_fail "expected an empty spool: $(ls "$VT_DIR/spool/queue")"

m_scrape
vt_assert_eq "messages accepted" $((N + 1)) "$(m_get vipmta_messages_accepted_total)"
vt_assert_eq "recipients accepted" $((N + 1)) "$(m_get vipmta_recipients_accepted_total)"
vt_assert_eq "messages rejected" 0 "$(m_get vipmta_messages_rejected_total)"
sessions=$(m_get vipmta_smtp_sessions_total)
[ "$sessions" -ge 2 ] || vt_fail "vipmta_smtp_sessions_total is $sessions, want at least 2"

vt_log "bodies in memory: the delivered messages and the bounced one (for its DSN) read from memory, the DSN (written at once) from its file"
vt_assert_eq "bodies read from memory" $((N + 1)) "$(m_get vipmta_spool_body_reads_total from=memory)"
vt_assert_eq "bodies read from files (the DSN)" 1 "$(m_get vipmta_spool_body_reads_total from=file)"
vt_assert_eq "memory bound" 67108864 "$(m_get vipmta_spool_memory_limit_bytes)"
[ "$(m_get vipmta_spool_memory_kept_total)" -ge "$N" ] || vt_fail "bodies kept in memory: $(m_get vipmta_spool_memory_kept_total)"

vt_log "delivered per binding: sums to $N and the DSN, and matches the sinks' count per source address"
vt_assert_eq "delivered over all bindings" $((N + 1)) "$(m_get vipmta_binding_recipients_total outcome=delivered)"
vt_assert_eq "vip3 delivered (the DSN) = DSN sink messages from 127.0.0.4" \
    "$(vt_sink_count dsn message peer 127.0.0.4)" "$(m_get vipmta_binding_recipients_total binding=vip3 outcome=delivered)"
d1=$(m_get vipmta_binding_recipients_total binding=vip1 slot=1 outcome=delivered)
d2=$(m_get vipmta_binding_recipients_total binding=vip2 slot=2 outcome=delivered)
vt_assert_eq "vip1 delivered = sink messages from 127.0.0.2" "$(vt_sink_count sink message peer 127.0.0.2)" "$d1"
vt_assert_eq "vip2 delivered = sink messages from 127.0.0.3" "$(vt_sink_count sink message peer 127.0.0.3)" "$d2"
[ "$d1" -ge 1 ] && [ "$d2" -ge 1 ] || vt_fail "the pool did not use both bindings (vip1 $d1, vip2 $d2)"
vt_assert_eq "vip1 connections = sink connections from 127.0.0.2" \
    "$(vt_sink_count sink connect peer 127.0.0.2)" "$(m_get vipmta_binding_connections_total binding=vip1)"
vt_assert_eq "vip2 connections = sink connections from 127.0.0.3" \
    "$(vt_sink_count sink connect peer 127.0.0.3)" "$(m_get vipmta_binding_connections_total binding=vip2)"
vt_assert_eq "bounced (user@veto.test, on vip3)" 1 "$(m_get vipmta_binding_recipients_total binding=vip3 outcome=bounced)"
vt_assert_eq "bounced over all bindings" 1 "$(m_get vipmta_binding_recipients_total outcome=bounced)"
vt_assert_eq "connect failures" 0 "$(m_get vipmta_binding_connect_failures_total)"

vt_log "the veto: by module, by binding, by kind; it bounced the recipient (no deferral)"
vt_assert_eq "netacl vetoes" 1 "$(m_get vipmta_postbind_vetoes_total module=netacl)"
vt_assert_eq "vetoes by any module" 1 "$(m_get vipmta_postbind_vetoes_total)"
vt_assert_eq "vip3 vetoes" 1 "$(m_get vipmta_binding_vetoes_total binding=vip3 slot=3)"
vt_assert_eq "vip3 permanent vetoes" 1 "$(m_get vipmta_binding_vetoes_by_kind_total binding=vip3 kind=permanent)"
vt_assert_eq "vip3 transient vetoes" 0 "$(m_get vipmta_binding_vetoes_by_kind_total binding=vip3 kind=transient)"
vt_assert_eq "vip3 vetoes asking for another binding" 0 "$(m_get vipmta_binding_vetoes_by_kind_total binding=vip3 kind=other_binding)"
vt_assert_eq "vip3 moved out" 0 "$(m_get vipmta_binding_moved_out_total binding=vip3)"
vt_assert_eq "vip3 connections (the vetoed one, the DSN's)" 2 "$(m_get vipmta_binding_connections_total binding=vip3)"
vt_assert_eq "vip3 deferred" 0 "$(m_get vipmta_binding_recipients_total binding=vip3 outcome=deferred)"
vt_assert_eq "vetoes on the pool" 0 "$(($(m_get vipmta_binding_vetoes_total binding=vip1) + $(m_get vipmta_binding_vetoes_total binding=vip2)))"

vt_log "per domain and the queue"
vt_assert_eq "z.test delivered" "$N" "$(m_get vipmta_domain_recipients_total domain=z.test outcome=delivered)"
vt_assert_eq "z.test queued" 0 "$(m_get vipmta_domain_queued domain=z.test)"
vt_assert_eq "veto.test queued" 0 "$(m_get vipmta_domain_queued domain=veto.test)"
vt_assert_eq "veto.test bounced" 1 "$(m_get vipmta_domain_recipients_total domain=veto.test outcome=bounced)"
vt_assert_eq "veto.test deferred" 0 "$(m_get vipmta_domain_recipients_total domain=veto.test outcome=deferred)"
vt_assert_eq "veto.test delivered" 0 "$(m_get vipmta_domain_recipients_total domain=veto.test outcome=delivered)"
vt_assert_eq "queue total" 0 "$(m_get vipmta_queue_recipients)"
vt_assert_eq "open connections: bindings agree with domains" \
    "$(m_get vipmta_domain_connections_open)" "$(m_get vipmta_binding_connections_open)"
vt_assert_eq "domains omitted" 0 "$(m_get vipmta_metrics_domains_omitted)"

vt_log "spool sync rounds were measured"
count=$(m_get vipmta_spool_sync_seconds_count)
[ "$count" -gt 0 ] || vt_fail "vipmta_spool_sync_seconds_count is $count after $((N + 1)) accepted messages"
vt_assert_eq "+Inf bucket = count" "$count" "$(m_get vipmta_spool_sync_seconds_bucket le=+Inf)"
up=$(m_get vipmta_uptime_seconds)
"$VT_PYTHON" -c "import sys; sys.exit(not 0 < float('$up') < 600)" || vt_fail "uptime $up"

vt_log "other paths and methods"
vt_assert_eq "GET /" "404 " "$(m_http GET /)"
vt_assert_eq "GET /metricsx" "404 " "$(m_http GET /metricsx)"
vt_assert_eq "GET /metrics/" "404 " "$(m_http GET /metrics/)"
vt_assert_eq "POST /metrics" "405 GET, HEAD" "$(m_http POST /metrics)"
vt_assert_eq "DELETE /metrics" "405 GET, HEAD" "$(m_http DELETE /metrics)"
vt_assert_eq "HEAD /metrics" "200 " "$(m_http HEAD /metrics)"
vt_assert_eq "GET /metrics?x=1" "200 " "$(m_http GET '/metrics?x=1')"
m_scrape
vt_assert_eq "still serving after the odd requests" $((N + 1)) "$(m_get vipmta_messages_accepted_total)"
vt_stop_daemon || vt_fail "the daemon exited with status $?"

vt_log "the metrics port taken: the daemon does not start and says why"
vt_start_sink blocker "$MPORT"
status=0
timeout 30 "$VIPMTA_TOP_BUILDDIR/core/vipmta" -f -c "$DL_CONF" >"$VT_DIR/busy.log" 2>&1 || status=$?
[ "$status" -ne 0 ] || vt_fail "the daemon started although 127.0.0.1:$MPORT is in use"
vt_assert_eq "exit status with the metrics port in use (log: $(tail -3 "$VT_DIR/busy.log"))" 1 "$status"
vt_assert_file_contains "the port-in-use error" "$VT_DIR/busy.log" \
    "metrics.address/metrics.port: cannot listen on 127.0.0.1:$MPORT for the metrics endpoint: Address already in use (another process uses that port: choose another metrics.port, or stop it)"
vt_stop_sink blocker

vt_log "max_domains 1: the domain with most queued stays, the other is counted as omitted"
metrics_config 1
vt_start_daemon "$DL_CONF"
dl_send sender@src.test again@z.test "after the restart"
dl_send sender@src.test user@down.test "nowhere to go"
dl_wait 1 20 outcome deferred domain down.test || vt_fail "user@down.test was not deferred"
vt_sink_wait sink $((N + 1)) 30 message >/dev/null || vt_fail "the message after the restart did not arrive"
dl_wait $((N + 2)) 20 outcome delivered || vt_fail "the message after the restart was not logged delivered"
m_scrape
vt_assert_eq "domains omitted" 1 "$(m_get vipmta_metrics_domains_omitted)"
vt_assert_eq "down.test (1 queued) shown" 1 "$(m_get vipmta_domain_queued domain=down.test)"
vt_assert_eq "z.test (none queued) left out" missing "$(m_get vipmta_domain_queued domain=z.test)"
vt_assert_eq "the queue total still counts every domain" 1 "$(m_get vipmta_queue_recipients)"
vt_assert_eq "delivered after the restart" 1 "$(m_get vipmta_binding_recipients_total outcome=delivered)"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
