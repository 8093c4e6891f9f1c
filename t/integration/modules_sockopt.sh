#!/bin/sh
# modules_sockopt.sh: the sockopt module marks each binding's packets with its TOS (default, per binding, per domain, per binding x domain) as the sink sees them, and every option reads back with getsockopt() from the daemon's socket.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
[ -e "$MODDIR/sockopt.la" ] || vt_skip "the sockopt module is not built in $MODDIR"
SINK=$(vt_free_port)
SLOW=$(vt_free_port)
vt_start_sink sink "$SINK"
# slow.test's sink answers every command after 400 ms, so its session stays open long
# enough to read the options back from the daemon's socket while it is connected
vt_start_sink slow "$SLOW" --delay-ms 400

# slow.test gets every option the module has; congestion: an algorithm other than the
# system default that an unprivileged process may set too (none: left out); mark: only
# with CAP_NET_ADMIN (otherwise setsockopt fails, which is not what this test is about)
CC=$("$VT_PYTHON" -c '
try:
    dflt = open("/proc/sys/net/ipv4/tcp_congestion_control").read().split()[0]
    allowed = open("/proc/sys/net/ipv4/tcp_allowed_congestion_control").read().split()
    print(next((a for a in allowed if a != dflt), ""))
except (OSError, IndexError):
    print("")')
HAS_NET_ADMIN=$("$VT_PYTHON" -c '
caps = 0
for line in open("/proc/self/status"):
    if line.startswith("CapEff:"):
        caps = int(line.split()[1], 16)
print(1 if caps & (1 << 12) else 0)')
SLOW_OPTS='"tos": "af41", "nodelay": true, "keepalive": {"idle": 77, "interval": 11, "count": 3},
    "user_timeout_ms": 12345, "sndbuf": 65536, "rcvbuf": 98304'
[ -n "$CC" ] && SLOW_OPTS="$SLOW_OPTS, \"congestion\": \"$CC\""
[ "$HAS_NET_ADMIN" = 1 ] && SLOW_OPTS="$SLOW_OPTS, \"mark\": 4242"

# vip1: cs1 (TOS 32) from its binding entry; vip2: af21 (TOS 72) from "default";
# vip1 to ef.test: ef (TOS 184) from the domain entry, which wins over the binding.
dl_config "{
  \"bindings\": {
    \"vip1\": {\"address\": \"127.0.0.2\", \"ehlo\": \"vip1.sockopt.test\"},
    \"vip2\": {\"address\": \"127.0.0.3\", \"ehlo\": \"vip2.sockopt.test\"}
  },
  \"binding_rules\": [
    {\"recipient_domain\": \"one.test\", \"binding\": \"vip1\"},
    {\"recipient_domain\": \"two.test\", \"binding\": \"vip2\"},
    {\"recipient_domain\": \"ef.test\", \"binding\": \"vip1\"},
    {\"recipient_domain\": \"slow.test\", \"binding\": \"vip1\"},
    {\"recipient_domain\": \"pair.test\", \"binding\": \"vip2\"},
    {\"header\": \"X-Binding\"}
  ],
  \"routes\": {\"slow.test\": \"127.0.0.1:$SLOW\", \"*\": \"127.0.0.1:$SINK\"},
  \"module_path\": [\"$MODDIR\"],
  \"modules\": [{\"name\": \"sockopt\",
    \"options\": {\"tos\": \"af21\"},
    \"bindings\": {\"vip1\": {\"tos\": \"cs1\"}},
    \"domains\": {\"ef.test\": {\"tos\": \"ef\"}, \"slow.test\": {$SLOW_OPTS}},
    \"binding_domains\": {\"vip2\": {\"pair.test\": {\"tos\": \"cs5\"}}}
  }]
}"
vt_start_daemon "$DL_CONF"
grep -q 'info \[sockopt\] ready: 1 binding, 2 domain and 1 binding x domain override' "$VT_DAEMON_LOG" ||
    vt_fail "no sockopt ready line naming 1 binding, 2 domain and 1 binding x domain overrides"

vt_log "one message by recipient domain to each binding, one to the overridden domain"
dl_send sender@src.test a@one.test "via vip1"
dl_send sender@src.test b@two.test "via vip2"
dl_send sender@src.test c@ef.test "via vip1 to ef.test"
dl_send sender@src.test g@pair.test "via vip2 to pair.test"
vt_sink_wait sink 4 30 message >/dev/null || vt_fail "the sink got $(vt_sink_count sink message) of 4 messages"

vt_assert_eq "one.test from 127.0.0.2" 1 "$(vt_sink_count sink message rcpts a@one.test peer 127.0.0.2)"
vt_assert_eq "two.test from 127.0.0.3" 1 "$(vt_sink_count sink message rcpts b@two.test peer 127.0.0.3)"
vt_assert_eq "ef.test from 127.0.0.2" 1 "$(vt_sink_count sink message rcpts c@ef.test peer 127.0.0.2)"

vt_log "the TOS byte the peer sent: 32 (cs1) from vip1, 72 (af21) from vip2, 184 (ef) for ef.test"
vt_assert_eq "TOS of vip1's message to one.test" 32 "$(vt_sink_get sink message tos rcpts a@one.test)"
vt_assert_eq "TOS of vip2's message to two.test" 72 "$(vt_sink_get sink message tos rcpts b@two.test)"
vt_assert_eq "TOS of vip1's message to ef.test" 184 "$(vt_sink_get sink message tos rcpts c@ef.test)"
vt_assert_eq "TOS of vip2's message to pair.test (binding x domain)" 160 "$(vt_sink_get sink message tos rcpts g@pair.test)"
# the connect record is what the handshake carried: the option was set before connect()
for c in $(vt_sink_get sink message conn rcpts a@one.test); do
    vt_assert_eq "handshake TOS of vip1's connection $c" 32 "$(vt_sink_get sink connect tos conn "$c")"
done
for c in $(vt_sink_get sink message conn rcpts b@two.test); do
    vt_assert_eq "handshake TOS of vip2's connection $c" 72 "$(vt_sink_get sink connect tos conn "$c")"
done
for c in $(vt_sink_get sink message conn rcpts c@ef.test); do
    vt_assert_eq "handshake TOS of the ef.test connection $c" 184 "$(vt_sink_get sink connect tos conn "$c")"
done

vt_log "a relay client picks the binding with X-Binding: the binding's TOS follows"
vt_swaks --port "$DL_PORT" --from sender@src.test --to d@hdr.test \
    --add-header 'X-Binding: vip2' --add-header 'X-Test-Id: hdr2' >/dev/null || vt_fail "injection with X-Binding: vip2 failed"
vt_swaks --port "$DL_PORT" --from sender@src.test --to e@hdr.test \
    --add-header 'X-Binding: vip1' --add-header 'X-Test-Id: hdr1' >/dev/null || vt_fail "injection with X-Binding: vip1 failed"
vt_sink_wait sink 6 30 message >/dev/null || vt_fail "the sink got $(vt_sink_count sink message) of 6 messages"
vt_assert_eq "X-Binding vip2 message's peer" 127.0.0.3 "$(vt_sink_get sink message peer headers.x-test-id hdr2)"
vt_assert_eq "X-Binding vip2 message's TOS" 72 "$(vt_sink_get sink message tos headers.x-test-id hdr2)"
vt_assert_eq "X-Binding vip1 message's peer" 127.0.0.2 "$(vt_sink_get sink message peer headers.x-test-id hdr1)"
vt_assert_eq "X-Binding vip1 message's TOS" 32 "$(vt_sink_get sink message tos headers.x-test-id hdr1)"

vt_log "every option of slow.test read back with getsockopt() from the daemon's own socket, while connected"
dl_send sender@src.test f@slow.test "slow, every option"
# pidfd_getfd() duplicates the daemon's socket into the reader, which then queries it:
# the very socket the hook was given (same source, same peer), not a copy made by the test
"$VT_PYTHON" - "$VT_DAEMON_PID" "$SLOW" 30 >"$VT_DIR/readback.txt" 2>"$VT_DIR/readback.err" <<'EOF'
import ctypes, os, socket, struct, sys, time
pid, port, limit = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_getfd = 438  # the same number on every architecture (Linux 5.6+)
try:
    pidfd = os.pidfd_open(pid)
except (AttributeError, OSError) as e:
    print("no pidfd_open: %s" % e, file=sys.stderr)
    sys.exit(77)
IP_TOS, SO_MARK, TCP_USER_TIMEOUT, TCP_CONGESTION = 1, 36, 18, 13
end = time.time() + limit
while time.time() < end:
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            if not os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
                continue
        except OSError:
            continue
        fd = libc.syscall(SYS_pidfd_getfd, pidfd, int(name), 0)
        if fd < 0:
            err = ctypes.get_errno()
            if err in (1, 38):  # EPERM, ENOSYS: this kernel or sandbox does not allow it
                print("pidfd_getfd: %s" % os.strerror(err), file=sys.stderr)
                sys.exit(77)
            continue
        s = socket.socket(fileno=fd)
        try:
            if s.family != socket.AF_INET or s.type != socket.SOCK_STREAM:
                continue
            try:
                peer = s.getpeername()
            except OSError:
                continue
            if peer != ("127.0.0.1", port):
                continue
            gi = lambda lvl, opt: s.getsockopt(lvl, opt)
            print("source", s.getsockname()[0])
            print("source_port", s.getsockname()[1])
            print("IP_TOS", gi(socket.IPPROTO_IP, IP_TOS))
            print("TCP_NODELAY", gi(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            print("SO_KEEPALIVE", gi(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
            print("TCP_KEEPIDLE", gi(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE))
            print("TCP_KEEPINTVL", gi(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL))
            print("TCP_KEEPCNT", gi(socket.IPPROTO_TCP, socket.TCP_KEEPCNT))
            print("TCP_USER_TIMEOUT", gi(socket.IPPROTO_TCP, TCP_USER_TIMEOUT))
            print("SO_SNDBUF", gi(socket.SOL_SOCKET, socket.SO_SNDBUF))
            print("SO_RCVBUF", gi(socket.SOL_SOCKET, socket.SO_RCVBUF))
            print("SO_MARK", gi(socket.SOL_SOCKET, SO_MARK))
            print("TCP_CONGESTION", s.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, 16).rstrip(b"\0").decode())
            sys.exit(0)
        finally:
            s.close()
    time.sleep(0.02)
print("no socket of the daemon was connected to 127.0.0.1:%d within %g s" % (port, limit), file=sys.stderr)
sys.exit(1)
EOF
rc=$?
if [ "$rc" -eq 77 ]; then
    vt_log "cannot read the daemon's socket here ($(cat "$VT_DIR/readback.err")); t/check_mod_sockopt reads the options back from the hook's socket"
elif [ "$rc" -ne 0 ]; then
    vt_fail "reading the options back: $(cat "$VT_DIR/readback.err")"
else
    rb() { sed -n "s/^$1 //p" "$VT_DIR/readback.txt"; }
    vt_assert_eq "source address of the socket" 127.0.0.2 "$(rb source)"
    vt_assert_eq "IP_TOS (af41)" 136 "$(rb IP_TOS)"
    vt_assert_eq "TCP_NODELAY" 1 "$(rb TCP_NODELAY)"
    vt_assert_eq "SO_KEEPALIVE" 1 "$(rb SO_KEEPALIVE)"
    vt_assert_eq "TCP_KEEPIDLE" 77 "$(rb TCP_KEEPIDLE)"
    vt_assert_eq "TCP_KEEPINTVL" 11 "$(rb TCP_KEEPINTVL)"
    vt_assert_eq "TCP_KEEPCNT" 3 "$(rb TCP_KEEPCNT)"
    vt_assert_eq "TCP_USER_TIMEOUT" 12345 "$(rb TCP_USER_TIMEOUT)"
    vt_assert_eq "SO_SNDBUF (the kernel doubles 65536)" 131072 "$(rb SO_SNDBUF)"
    vt_assert_eq "SO_RCVBUF (the kernel doubles 98304)" 196608 "$(rb SO_RCVBUF)"
    [ -n "$CC" ] && vt_assert_eq "TCP_CONGESTION" "$CC" "$(rb TCP_CONGESTION)"
    [ "$HAS_NET_ADMIN" = 1 ] && vt_assert_eq "SO_MARK" 4242 "$(rb SO_MARK)"
    vt_sink_wait slow 1 30 message >/dev/null || vt_fail "slow.test's message did not arrive"
    vt_assert_eq "the slow sink's peer port is the read-back socket's source port" \
        "$(rb source_port)" "$(vt_sink_get slow connect peer_port conn "$(vt_sink_get slow message conn rcpts f@slow.test)")"
fi
vt_sink_wait slow 1 30 message >/dev/null || vt_fail "slow.test's message did not arrive"
vt_assert_eq "TOS slow.test's connection carried (af41)" 136 \
    "$(vt_sink_get slow connect tos conn "$(vt_sink_get slow message conn rcpts f@slow.test)")"

vt_log "every connection carried one of the configured marks; no setsockopt failed"
vt_assert_eq "connections from 127.0.0.2 without TOS 32 or 184" 0 \
    "$(($(vt_sink_count sink connect peer 127.0.0.2) - $(vt_sink_count sink connect peer 127.0.0.2 tos 32) - $(vt_sink_count sink connect peer 127.0.0.2 tos 184)))"
vt_assert_eq "connections from 127.0.0.3 without TOS 72 or 160" 0 \
    "$(($(vt_sink_count sink connect peer 127.0.0.3) - $(vt_sink_count sink connect peer 127.0.0.3 tos 72) - $(vt_sink_count sink connect peer 127.0.0.3 tos 160)))"
if grep -q 'warning \[sockopt\]' "$VT_DAEMON_LOG"; then
    vt_fail "sockopt logged a failure: $(grep 'warning \[sockopt\]' "$VT_DAEMON_LOG" | head -n 1)"
fi
vt_stop_daemon || vt_fail "the daemon exited with status $?"
