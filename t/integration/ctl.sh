#!/bin/sh
# ctl.sh: vipmtactl against the running daemon: status, bindings, domains and modules in JSON and tables agree with the mail sent; socket mode 0600; bad requests; reload; a second daemon refused; shutdown; no daemon.
. "$VIPMTA_TOP_SRCDIR/t/integration/ctl_lib.sh"

dl_init
[ -x "$CTL" ] || vt_skip "core/vipmtactl is not built"
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
[ -e "$MODDIR/example.la" ] || vt_skip "the example module is not built in $MODDIR"
SINK=$(vt_free_port)
vt_start_sink sink "$SINK"
dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}},
  \"binding_rules\": [{\"recipient_domain\": \"ok.test\", \"binding\": \"vip1\"}],
  \"routes\": {\"*\": [\"127.0.0.1:$SINK\"]},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"example\", \"enabled\": true, \"options\": {\"veto\": false}}]
}"
SOCK=$VT_DIR/spool/control.sock

vt_log "no daemon: exit 2 and a message saying what to check"
mkdir -p "$VT_DIR/spool"
ctl status
vt_assert_eq "exit status without a daemon" 2 "$CTL_RC"
vt_assert_match "message without a daemon" "vipmtactl: cannot connect to $SOCK: No such file or directory: is vipmta running? (control_socket in the config)" "$CTL_ERR"

vt_start_daemon "$DL_CONF"

vt_log "the socket is owner-only"
[ -S "$SOCK" ] || vt_fail "no control socket at $SOCK"
vt_assert_eq "socket mode" 600 "$(stat -c %a "$SOCK")"

dl_send sender@src.test user1@ok.test "ctl" 3
dl_send sender@src.test user2@ok.test,user3@ok.test "ctl two"
dl_wait 5 30 outcome delivered || vt_fail "not all 5 recipients delivered: $(dl_count outcome delivered)"

vt_log "status"
ctl_ok --json status
vt_assert_eq "status ok" true "$(ctl_py 'r["ok"]')"
vt_assert_eq "messages accepted" 4 "$(ctl_py 'r["messages_accepted"]')"
vt_assert_eq "recipients accepted" 5 "$(ctl_py 'r["recipients_accepted"]')"
vt_assert_eq "delivered" 5 "$(ctl_py 'r["delivered"]')"
vt_assert_eq "sessions" 2 "$(ctl_py 'r["sessions"]')"
vt_assert_eq "bindings" 2 "$(ctl_py 'r["bindings"]')"
vt_assert_eq "modules" 1 "$(ctl_py 'r["modules"]')"
vt_assert_eq "queue empty" 0 "$(ctl_py 'r["queue"]["messages"]')"
vt_assert_eq "pid" "$VT_DAEMON_PID" "$(ctl_py 'r["pid"]')"
vt_assert_eq "version" "$("$VIPMTA_TOP_BUILDDIR/core/vipmta" -V | cut -d' ' -f2)" "$(ctl_py 'r["version"]')"
ctl_ok status
printf '%s\n' "$CTL_OUT" | grep -q '^messages accepted  *4$' || vt_fail "status table: no 'messages accepted 4': $CTL_OUT"
printf '%s\n' "$CTL_OUT" | grep -q '^delivered  *5$' || vt_fail "status table: no 'delivered 5': $CTL_OUT"
printf '%s\n' "$CTL_OUT" | grep -q "^pid  *$VT_DAEMON_PID\$" || vt_fail "status table: no pid: $CTL_OUT"

vt_log "bindings: vip1 made the deliveries"
ctl_ok bindings --json
vt_assert_eq "vip1 delivered" 5 "$(ctl_py '[b["delivered"] for b in r["bindings"] if b["name"] == "vip1"][0]')"
vt_assert_eq "vip1 address" 127.0.0.2 "$(ctl_py '[b["address"] for b in r["bindings"] if b["name"] == "vip1"][0]')"
vt_assert_eq "vip1 slot" 1 "$(ctl_py '[b["slot"] for b in r["bindings"] if b["name"] == "vip1"][0]')"
vt_assert_eq "default delivered" 0 "$(ctl_py '[b["delivered"] for b in r["bindings"] if b["name"] == "default"][0]')"
conns=$(ctl_py '[b["connections"] for b in r["bindings"] if b["name"] == "vip1"][0]')
[ "$conns" -ge 1 ] && [ "$conns" -le 5 ] || vt_fail "vip1 connections: expected 1-5, got $conns"
vt_assert_eq "connections seen by the sink" "$conns" "$(vt_sink_count sink connect peer 127.0.0.2)"
ctl_ok bindings
vt_assert_match "bindings header" "NAME*SLOT*ADDRESS*CONNECTIONS*OPEN*DELIVERED*DEFERRED*BOUNCED*VETOES*MOVED" "$(printf '%s\n' "$CTL_OUT" | head -n 1)"
vt_assert_eq "table: vip1 DELIVERED" 5 "$(ctl_table_cell vip1 DELIVERED)"
vt_assert_eq "table: vip1 ADDRESS" 127.0.0.2 "$(ctl_table_cell vip1 ADDRESS)"
vt_assert_eq "table: vip1 CONNECTIONS" "$conns" "$(ctl_table_cell vip1 CONNECTIONS)"
vt_assert_eq "table: default ADDRESS" "(any)" "$(ctl_table_cell default ADDRESS)"

vt_log "domains"
ctl_ok --json domains
vt_assert_eq "ok.test deliveries" 5 "$(ctl_py '[d["deliveries"] for d in r["domains"] if d["domain"] == "ok.test"][0]')"
vt_assert_eq "ok.test queued" 0 "$(ctl_py '[d["queued"] for d in r["domains"] if d["domain"] == "ok.test"][0]')"
vt_assert_eq "ok.test last error" None "$(ctl_py '[d["last_error"] for d in r["domains"] if d["domain"] == "ok.test"][0] or "None"')"
ctl_ok domains
vt_assert_eq "table: ok.test DELIVERED" 5 "$(ctl_table_cell ok.test DELIVERED)"
vt_assert_eq "table: ok.test QUEUED" 0 "$(ctl_table_cell ok.test QUEUED)"
ctl domains nosuch.test
vt_assert_eq "unknown domain: exit status" 1 "$CTL_RC"
vt_assert_match "unknown domain" "vipmtactl: no domain nosuch.test is known*" "$CTL_ERR"

vt_log "modules: the example module and its hook"
ctl_ok --json modules
vt_assert_eq "module name" example "$(ctl_py 'r["modules"][0]["name"]')"
vt_assert_eq "module version" 1.0.0 "$(ctl_py 'r["modules"][0]["version"]')"
vt_assert_eq "module hooks" '[["core_connection_post_bind", 1, 1]]' "$(ctl_py '[[h["hook"], h["position"], h["of"]] for h in r["modules"][0]["hooks"]]')"
vt_assert_eq "chain order" '["example"]' "$(ctl_py '[c["modules"] for c in r["chains"] if c["hook"] == "core_connection_post_bind"][0]')"
ctl_ok modules
vt_assert_eq "table: example VERSION" 1.0.0 "$(ctl_table_cell example VERSION)"
printf '%s\n' "$CTL_OUT" | grep -q '^  core_connection_post_bind: example$' || vt_fail "modules: no chain line: $CTL_OUT"

vt_log "bad requests get an error reply; the daemon lives on"
"$VT_PYTHON" - "$SOCK" <<'PY' || vt_fail "bad requests were not answered as expected"
import json, socket, sys
def ask(payload):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sys.argv[1])
    s.sendall(payload)
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data.decode().splitlines()[0])
cases = [
    (b"this is not json\n", "bad request: not JSON"),
    (b"[1, 2]\n", "bad request: expected a JSON object"),
    (b'{"command": 7}\n', 'bad request: "command" must be a string'),
    (b'{"command": "status", "args": "x"}\n', 'bad request: "args" must be a list'),
    (b'{"command": "status", "args": [1]}\n', "bad request: args[0] must be a string"),
    (b'{"command": "frobnicate"}\n', 'unknown command "frobnicate"'),
    (b'{"command": "queue", "args": ["show", "../../etc/passwd"]}\n', "is not a message id"),
    (b"x" * 70000, "longer than 65536 bytes"),
    # a key twice: refused, never "the last one wins" (that would shut down here)
    (b'{"command":"status","command":"shutdown"}\n', "duplicate object key"),
]
for payload, want in cases:
    r = ask(payload)
    if r.get("ok") is not False or want not in r.get("error", ""):
        sys.exit("%r: got %r, want an error with %r" % (payload[:40], r, want))
# several requests on one connection, answered in order
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"command":"status"}\n{"command":"bindings"}\n')
f = s.makefile("rb")
a, b = json.loads(f.readline()), json.loads(f.readline())
if not (a["ok"] and "uptime" in a and b["ok"] and "bindings" in b):
    sys.exit("pipelined: %r %r" % (a, b))
PY
vt_daemon_running || vt_fail "the daemon died on bad requests (or shut down on a duplicate key)"

vt_log "more than 32 control clients at once: the 33rd hears the daemon's reason, not a broken pipe"
"$VT_PYTHON" - "$SOCK" <<'PY' &
import socket, sys, time
held = []
for i in range(32):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    held.append(s)
time.sleep(3)
PY
HOLDER=$!
sleep 1
ctl status
wait "$HOLDER"
vt_assert_eq "refused: exit status" 1 "$CTL_RC"
vt_assert_match "the daemon's reason" "*too many control clients (at most 32 at once); try again*" "$CTL_ERR"
case $CTL_ERR in *"Broken pipe"*) vt_fail "vipmtactl said Broken pipe: $CTL_ERR" ;; esac
ctl frobnicate
vt_assert_eq "unknown command: exit status" 1 "$CTL_RC"
vt_assert_match "unknown command" 'vipmtactl: unknown command "frobnicate"*' "$CTL_ERR"
ctl
vt_assert_eq "no command: exit status" 2 "$CTL_RC"
"$CTL" -h | grep -q "queue bounce ID" || vt_fail "vipmtactl -h does not explain queue bounce"

vt_log "reload"
ctl_ok reload
vt_assert_eq "reload output" reloaded "$CTL_OUT"

vt_log "a second daemon on the same control socket (and spool) is refused before touching the spool"
out=$(timeout 20 "$VIPMTA_TOP_BUILDDIR/core/vipmta" -f -c "$DL_CONF" 2>&1) && vt_fail "a second daemon started: $out"
vt_assert_match "second daemon" "*control_socket: another vipmta answers on $SOCK: stop it first*" "$out"
case $out in *"spool recovered"*) vt_fail "the second daemon recovered the spool: $out" ;; esac
vt_daemon_running || vt_fail "the first daemon died"
ctl_ok status

vt_log "shutdown: replied first, then the daemon exits 0 and removes the socket"
ctl_ok shutdown
vt_assert_eq "shutdown output" "vipmta is stopping" "$CTL_OUT"
pid=$VT_DAEMON_PID
VT_DAEMON_PID=
vt_wait_until 20 sh -c "! kill -0 $pid 2>/dev/null || grep -q '^State:.*Z' /proc/$pid/status" || vt_fail "the daemon did not stop"
wait "$pid"
vt_assert_eq "daemon exit status" 0 "$?"
[ ! -e "$SOCK" ] || vt_fail "the socket was not removed at shutdown"
grep -q 'vipmtactl shutdown: stopping' "$VT_DAEMON_LOG" || vt_fail "no shutdown line in the log"
ctl status
vt_assert_eq "after shutdown: exit status" 2 "$CTL_RC"

vt_log "a stale socket (daemon killed) is replaced at the next start"
vt_start_daemon "$DL_CONF"
vt_kill_daemon
[ -S "$SOCK" ] || vt_fail "no stale socket after kill -9"
vt_start_daemon "$DL_CONF"
grep -q "removed the stale control socket $SOCK" "$VT_DAEMON_LOG" || vt_fail "no log line about the stale socket"
ctl_ok --json status
vt_assert_eq "after restart: messages accepted" 0 "$(ctl_py 'r["messages_accepted"]')"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
[ ! -e "$SOCK" ] || vt_fail "the socket was not removed at SIGTERM"

vt_log "control_socket \"\" disables it; a path elsewhere is used"
dl_config "{\"routes\": {\"*\": [\"127.0.0.1:$SINK\"]}, \"control_socket\": \"\"}"
vt_start_daemon "$DL_CONF"
[ ! -e "$SOCK" ] || vt_fail "a socket was created although control_socket is \"\""
ctl status
vt_assert_eq "disabled: exit status" 2 "$CTL_RC"
vt_assert_match "disabled" "*control_socket is \"\": the control socket is disabled*" "$CTL_ERR"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
dl_config "{\"routes\": {\"*\": [\"127.0.0.1:$SINK\"]}, \"control_socket\": \"ctl/other.sock\"}"
mkdir -p "$VT_DIR/ctl"
vt_start_daemon "$DL_CONF"
[ -S "$VT_DIR/ctl/other.sock" ] || vt_fail "no socket at the configured relative path"
ctl_ok --json status
"$CTL" -s "$VT_DIR/ctl/other.sock" --json status >/dev/null || vt_fail "vipmtactl -s failed"
vt_stop_daemon || vt_fail "the daemon exited with status $?"

vt_log "a control_socket path too long for a unix socket is refused at start, naming the key"
long=$VT_DIR/$(printf 'x%.0s' $(seq 1 120))/ctl.sock
dl_config "{\"control_socket\": \"$long\"}"
out=$(timeout 20 "$VIPMTA_TOP_BUILDDIR/core/vipmta" -f -c "$DL_CONF" 2>&1) && vt_fail "started with a too long control_socket: $out"
vt_assert_match "too long" "*control_socket: $long is * bytes long; a unix socket path has at most 107: set control_socket to a shorter path*" "$out"
