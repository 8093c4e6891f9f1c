#!/bin/sh
# deliver_limits.sh: max_connections_per_binding 2 holds with 50 messages for one domain against a slow sink.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
SINK=$(vt_free_port)
vt_start_sink sink "$SINK" --delay-ms 30
dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}},
  \"default_binding_group\": \"only\",
  \"binding_groups\": {\"only\": [\"vip1\"]},
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"},
  \"domains\": {\"*\": {\"max_connections_per_binding\": 2, \"retry_schedule\": [1]}}
}"
vt_start_daemon "$DL_CONF"

dl_send sender@src.test user@limit.test "load" 50
vt_sink_wait sink 50 90 message rcpts user@limit.test >/dev/null ||
    vt_fail "only $(vt_sink_count sink message) of 50 messages arrived"
# the sink has the last message before the daemon has read its 250: wait for the log
dl_wait 50 30 outcome delivered binding vip1 >/dev/null ||
    vt_fail "only $(dl_count outcome delivered binding vip1) of 50 deliveries were logged"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
vt_stop_sink sink

# the highest number of connections open at once from one peer
max=$("$VT_PYTHON" - "$VT_DIR/sink.jsonl" <<'PY'
import collections, json, sys
open_now, top = collections.Counter(), collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "connect":
        open_now[r["peer"]] += 1
        top[r["peer"]] = max(top[r["peer"]], open_now[r["peer"]])
    elif r.get("event") == "disconnect":
        open_now[r["peer"]] -= 1
print(" ".join("%s=%d" % kv for kv in sorted(top.items())))
PY
)
vt_log "peak concurrent connections: $max"
case $max in
    127.0.0.2=1) vt_log "note: the backlog never called for a second connection (slow injection?)" ;;
    127.0.0.2=2) ;;
    *) vt_fail "connections per peer over the limit of 2, or from elsewhere: $max" ;;
esac
vt_assert_eq "delivered lines" 50 "$(dl_count outcome delivered binding vip1)"
