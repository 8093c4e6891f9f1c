#!/bin/sh
# modules_throttle.sh: throttle keeps a binding's new connections within "5/s" (counted at the sink), two daemons sharing one redis-server stay within one budget, and a Redis outage follows on_backend_error (allow on one node, deny on the other), logged once.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
[ -e "$MODDIR/throttle.la" ] || vt_skip "the throttle module is not built in $MODDIR"
REDIS_SERVER=$(command -v redis-server 2>/dev/null || echo /usr/bin/redis-server)
[ -x "$REDIS_SERVER" ] || vt_skip "redis-server is not installed"

# check_budget SINK PEERS BURST RATE EXTRA: the connect records of SINK from the
# comma-separated PEERS, in every window of time between two of them, number at
# most BURST + RATE x (window + 0.2 s) + EXTRA (0.2 s: the sink's timestamps are
# taken a little after the module's decisions). Prints "N SPAN" (connections,
# seconds from the first to the last) and returns 0, or prints the worst window
# and returns 1.
check_budget() {
    "$VT_PYTHON" - "$VT_DIR/$1.jsonl" "$2" "$3" "$4" "$5" <<'EOF'
import json, sys
path, peers, burst, rate, extra = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
ts = []
with open(path) as f:
    for line in f:
        r = json.loads(line)
        if r.get("event") == "connect" and r.get("peer") in peers:
            ts.append(r["t"])
ts.sort()
worst = None
for i in range(len(ts)):
    for j in range(i, len(ts)):
        n, w = j - i + 1, ts[j] - ts[i]
        allowed = burst + rate * (w + 0.2) + extra
        if n > allowed and (worst is None or n - allowed > worst[0]):
            worst = (n - allowed, n, w)
if worst:
    print("%d connections within %.3f s: over the budget of %d + %g/s x (%.3f + 0.2) s + %d"
          % (worst[1], worst[2], burst, rate, worst[2], extra))
    sys.exit(1)
print("%d %.3f" % (len(ts), ts[-1] - ts[0] if ts else 0))
EOF
}

# at_least A B: true when the number A >= B.
at_least() {
    "$VT_PYTHON" -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$1" "$2"
}

COMMON_DOMAINS='"domains": {"*": {"messages_per_connection": 1, "veto_retry": 1}}'

# ---------------------------------------------------------------- local backend

vt_log "local backend: 5/s for vip1; vip2 unlimited; 30 messages each, one connection per message"
SINK=$(vt_free_port)
vt_start_sink sink "$SINK"
dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}, \"vip2\": {\"address\": \"127.0.0.3\"}},
  \"binding_rules\": [
    {\"recipient_domain\": \"rate.test\", \"binding\": \"vip1\"},
    {\"recipient_domain\": \"free.test\", \"binding\": \"vip2\"}
  ],
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"},
  $COMMON_DOMAINS,
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"throttle\", \"options\": {
    \"limits\": [{\"binding\": \"vip1\", \"rate\": \"5/s\"}]
  }}]
}"
vt_start_daemon "$DL_CONF"
grep -q 'info \[throttle\] ready: 1 limit(s), backend local' "$VT_DAEMON_LOG" ||
    vt_fail "no throttle ready line"

dl_send sender@src.test user@free.test "free" 30
dl_send sender@src.test user@rate.test "rate" 30
vt_sink_wait sink 60 40 message >/dev/null ||
    vt_fail "the sink got $(vt_sink_count sink message) of 60 messages"
vt_assert_eq "rate.test messages from vip1" 30 "$(vt_sink_count sink message peer 127.0.0.2)"
vt_assert_eq "connections from vip1" 30 "$(vt_sink_count sink connect peer 127.0.0.2)"

res=$(check_budget sink 127.0.0.2 5 5 0) || vt_fail "vip1: $res"
set -- $res
vt_log "vip1: $1 connections in $2 s"
# 30 connections at 5/s after a burst of 5 need 5 s; unthrottled they take a fraction of a second
at_least "$2" 4.0 || vt_fail "vip1's 30 connections took $2 s, expected at least 4 s: not throttled"
res=$(check_budget sink 127.0.0.3 1000 0 0) || vt_fail "vip2: $res"
set -- $res
vt_log "vip2 (unlimited): $1 connections in $2 s"
at_least 2.0 "$2" || vt_fail "vip2's 30 unthrottled connections took $2 s: too slow to compare with vip1's"

vetoed=$(dl_count outcome vetoed binding vip1 domain rate.test)
[ "$vetoed" -gt 0 ] || vt_fail "no vetoed connection in the delivery log"
vt_assert_match "veto reason" "451 4.4.5 connection to 127.0.0.1:$SINK from binding \"vip1\" vetoed by module \"throttle\" (returned 1)" \
    "$(dl_get reply outcome vetoed binding vip1 | head -n 1)"
vt_assert_eq "vetoes for vip2" 0 "$(dl_count outcome vetoed binding vip2)"
grep -q 'info \[throttle\] binding "vip1" domain rate.test: over 5/s (burst 5); connection vetoed (mail deferred)' "$VT_DAEMON_LOG" ||
    vt_fail "no throttle line about the vetoes"
vt_assert_eq "bounces" 0 "$(dl_count outcome bounced)"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
vt_stop_sink sink

# ---------------------------------------------------------------- redis backend

RPORT=$(vt_free_port)
start_redis() {
    "$REDIS_SERVER" --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$VT_DIR" --logfile "$VT_DIR/redis.log" >/dev/null 2>&1 &
    echo $! >"$VT_DIR/redis.pid"
    vt_wait_port 127.0.0.1 "$RPORT" 10 || vt_fail "redis-server did not start (see $VT_DIR/redis.log)"
}
stop_redis() {
    r__pid=$(cat "$VT_DIR/redis.pid")
    kill -TERM "$r__pid"
    wait "$r__pid" 2>/dev/null
    rm -f "$VT_DIR/redis.pid"
}
# under valgrind (make check-valgrind) the daemon runs 20-50 times slower: a
# 200 ms reply deadline would report outages while Redis runs
REDIS_TIMEOUT=""
[ -n "${VT_DAEMON_WRAPPER:-}" ] && REDIS_TIMEOUT=', "timeout_ms": 5000'
start_redis

# Node A: vt_start_daemon, log vipmta.log, vip1 = 127.0.0.2, on_backend_error allow.
# Node B: started here, log nodeB.log, vip1 = 127.0.0.3, on_backend_error deny.
SINK2=$(vt_free_port)
vt_start_sink shared "$SINK2"
PREFIX="vt:$$:"
node_config() { # BINDING_ADDRESS ON_BACKEND_ERROR
    echo "{
  \"bindings\": {\"vip1\": {\"address\": \"$1\"}},
  \"binding_rules\": [{\"recipient_domain\": \"*\", \"binding\": \"vip1\"}],
  \"routes\": {\"*\": \"127.0.0.1:$SINK2\"},
  $COMMON_DOMAINS,
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"throttle\", \"options\": {
    \"backend\": \"redis\",
    \"redis\": {\"host\": \"127.0.0.1\", \"port\": $RPORT, \"key_prefix\": \"$PREFIX\"$REDIS_TIMEOUT},
    \"on_backend_error\": \"$2\",
    \"limits\": [{\"binding\": \"vip1\", \"rate\": \"5/s\"}]
  }}]
}"
}
PORT_A=$DL_PORT
dl_config "$(node_config 127.0.0.2 allow)"
cp "$DL_CONF" "$VT_DIR/nodeA.json"
PORT_B=$(vt_free_port)
DL_PORT=$PORT_B
mkdir -p "$VT_DIR/nodeB"
DL_CONF=$VT_DIR/nodeB/vipmta.json
dl_config "$(node_config 127.0.0.3 deny)"
"$VT_PYTHON" - "$DL_CONF" "$VT_DIR/nodeB" <<'EOF' || vt_error "cannot write node B's config"
import json, sys
path, d = sys.argv[1], sys.argv[2]
with open(path) as f:
    cfg = json.load(f)
cfg["spool_dir"] = d + "/spool"
cfg["delivery_log"] = d + "/delivery.jsonl"
with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
EOF
DL_PORT=$PORT_A
DL_CONF=$VT_DIR/nodeA.json

: >"$VT_DAEMON_LOG"
vt_start_daemon "$VT_DIR/nodeA.json"
NODE_B_LOG=$VT_DIR/nodeB.log
"$VIPMTA_TOP_BUILDDIR/core/vipmta" -f -c "$VT_DIR/nodeB/vipmta.json" >>"$NODE_B_LOG" 2>&1 &
echo $! >"$VT_DIR/nodeB.pid"
vt_wait_until 30 grep -q 'notice \[core\] vipmta .* started' "$NODE_B_LOG" ||
    vt_fail "node B did not start: $(tail -n 5 "$NODE_B_LOG")"
for log in "$VT_DAEMON_LOG" "$NODE_B_LOG"; do
    grep -q "info \[throttle\] ready: 1 limit(s), backend redis 127.0.0.1:$RPORT" "$log" ||
        vt_fail "no throttle ready line naming the redis backend in $log"
done

vt_log "redis backend: 20 messages to each of two nodes sharing one 5/s budget"
dl_send sender@src.test user@shared.test "node A" 20
DL_PORT=$PORT_B
dl_send sender@src.test user@shared.test "node B" 20
DL_PORT=$PORT_A
vt_sink_wait shared 40 40 message >/dev/null ||
    vt_fail "the shared sink got $(vt_sink_count shared message) of 40 messages"
vt_assert_eq "messages from node A" 20 "$(vt_sink_count shared message peer 127.0.0.2)"
vt_assert_eq "messages from node B" 20 "$(vt_sink_count shared message peer 127.0.0.3)"
# together within one budget; each node may start one connection (its batch)
# before Redis has answered for the other's, hence 2 more at most
res=$(check_budget shared 127.0.0.2,127.0.0.3 5 5 2) || vt_fail "nodes A and B: $res"
set -- $res
vt_log "both nodes: $1 connections in $2 s"
# one 5/s budget: (40 - 5 - 2) / 5 = 6.6 s; two separate budgets would need 3 s
at_least "$2" 5.0 || vt_fail "the 40 connections took $2 s, expected at least 5 s: the budget is not shared"
[ "$(dl_count outcome vetoed)" -gt 0 ] || vt_fail "node A saw no veto"
DL_LOG=$VT_DIR/nodeB/delivery.jsonl
[ "$(dl_count outcome vetoed)" -gt 0 ] || vt_fail "node B saw no veto"
DL_LOG=$VT_DIR/delivery.jsonl
if grep -q 'unreachable' "$VT_DAEMON_LOG" "$NODE_B_LOG"; then
    vt_fail "an outage was logged while redis ran: $(grep -h unreachable "$VT_DAEMON_LOG" "$NODE_B_LOG" | head -n 1)"
fi

# ---------------------------------------------------------------- redis down

vt_log "redis stops: node A (allow) keeps delivering, node B (deny) vetoes; each logs it once"
stop_redis
for log in "$VT_DAEMON_LOG" "$NODE_B_LOG"; do
    vt_wait_until 10 grep -q 'warning \[throttle\] redis 127.0.0.1:'"$RPORT"' unreachable' "$log" ||
        vt_fail "no outage line in $log"
done
grep -q 'unreachable: .*; until it is back, connections are allowed under this node.s local limits only (on_backend_error allow); this is logged once per outage' "$VT_DAEMON_LOG" ||
    vt_fail "node A's outage line does not say what happens: $(grep unreachable "$VT_DAEMON_LOG")"
grep -q 'unreachable: .*; until it is back, connections under a shared limit are vetoed (on_backend_error deny); this is logged once per outage' "$NODE_B_LOG" ||
    vt_fail "node B's outage line does not say what happens: $(grep unreachable "$NODE_B_LOG")"
DL_PORT=$PORT_B
dl_send sender@src.test user@down.test "down B" 3
DL_PORT=$PORT_A
dl_send sender@src.test user@down.test "down A" 3
vt_sink_wait shared 3 20 message headers.x-test-id~ 'down A*' >/dev/null ||
    vt_fail "node A (allow) did not deliver during the outage: $(vt_sink_count shared message headers.x-test-id~ 'down A*') of 3"
DL_LOG=$VT_DIR/nodeB/delivery.jsonl
# three vetoes at once, then one per retry round (veto_retry 1 s): the outage lasts a few rounds
DL_CONF=$VT_DIR/nodeB/vipmta.json
dl_wait_vetoes 6 20 vip1 || vt_fail "node B made fewer than 6 attempts: $(dl_vetoes vip1)"
dl_wait 1 20 outcome vetoed domain down.test || vt_fail "node B has no veto line for down.test"
DL_CONF=$VT_DIR/nodeA.json
vt_assert_match "node B's veto" "451 4.4.5 connection to 127.0.0.1:$SINK2 from binding \"vip1\" vetoed by module \"throttle\" (returned 4)" \
    "$(dl_get reply outcome vetoed domain down.test | head -n 1)"
vt_assert_eq "node B's deliveries during the outage" 0 "$(vt_sink_count shared message headers.x-test-id~ 'down B*')"
vt_assert_eq "node B's outage lines" 1 "$(grep -c 'warning \[throttle\] redis .* unreachable' "$NODE_B_LOG")"
vt_assert_eq "node A's outage lines" 1 "$(grep -c 'warning \[throttle\] redis .* unreachable' "$VT_DAEMON_LOG")"
[ -n "$(ls "$VT_DIR/nodeB/spool/queue/"*.env 2>/dev/null)" ] || vt_fail "node B's mail left its spool"

vt_log "redis is back: node B delivers its queued mail"
start_redis
vt_sink_wait shared 3 30 message headers.x-test-id~ 'down B*' >/dev/null ||
    vt_fail "node B did not deliver after redis came back: $(vt_sink_count shared message headers.x-test-id~ 'down B*') of 3"
for log in "$VT_DAEMON_LOG" "$NODE_B_LOG"; do
    vt_wait_until 10 grep -q 'notice \[throttle\] redis 127.0.0.1:'"$RPORT"' reachable again after' "$log" ||
        vt_fail "no recovery line in $log"
done
vt_assert_eq "bounces on node B" 0 "$(dl_count outcome bounced)"
DL_LOG=$VT_DIR/delivery.jsonl
vt_assert_eq "bounces on node A" 0 "$(dl_count outcome bounced)"

vt_stop_daemon || vt_fail "node A exited with status $?"
b__pid=$(cat "$VT_DIR/nodeB.pid")
kill -TERM "$b__pid"
wait "$b__pid"
b__rc=$?
rm -f "$VT_DIR/nodeB.pid"
vt_assert_eq "node B's exit status" 0 "$b__rc"
stop_redis
exit 0
