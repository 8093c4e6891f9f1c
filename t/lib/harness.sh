# harness.sh: POSIX-sh library sourced by vipmta integration tests: work dir, ports, SMTP sink, daemon, swaks, dnsmasq, asserts.
# Usage (in a test):  . "$VIPMTA_TOP_SRCDIR/t/lib/harness.sh"; vt_init; ...   See t/lib/README.md.
# Every name this file defines starts with vt_ / VT_ (internal ones with vt__ / VT__).

: "${VIPMTA_TOP_SRCDIR:?run through make check (VIPMTA_TOP_SRCDIR is not set)}"
: "${VIPMTA_TOP_BUILDDIR:?run through make check (VIPMTA_TOP_BUILDDIR is not set)}"

VT_LIB=$VIPMTA_TOP_SRCDIR/t/lib
VT_POSTFIX_SBIN=${VT_POSTFIX_SBIN:-/opt/vipmta-postfix/usr/sbin}
VT_POSTFIX_LIB=${VT_POSTFIX_LIB:-/opt/vipmta-postfix/usr/lib/postfix}
VT_DAEMON_PID=
VT_DIR=${VT_DIR:-}
VT_TMP=${VT_TMP:-}
# The tests run the daemon as whoever runs them (root in CI): allow root
# without "user" (like "run_as_root": true). t/integration/ops_privileges.sh
# unsets it to see the refusal.
VIPMTA_RUN_AS_ROOT=1
export VIPMTA_RUN_AS_ROOT

# The system python3 starts faster than a pyenv shim; either is fine (stdlib only).
if [ -z "${VT_PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then
        VT_PYTHON=/usr/bin/python3
    else
        VT_PYTHON=$(command -v python3 2>/dev/null)
    fi
fi
if [ -z "$VT_PYTHON" ] || ! "$VT_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 7))' 2>/dev/null; then
    echo "SKIP: python3 (3.7 or newer) is needed by the test harness" >&2
    exit 77
fi
export VT_PYTHON

# ---------------------------------------------------------------- basics

# vt_skip MSG: end the test as skipped (automake: exit 77).
vt_skip() {
    echo "SKIP: $*" >&2
    exit 77
}

# vt_fail MSG: print FAIL and exit 1 (the exit trap prints the daemon log tail).
vt_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# vt_error MSG: a hard error in the test itself (automake: exit 99).
vt_error() {
    echo "ERROR: $*" >&2
    exit 99
}

# vt_log MSG: a progress line in the test log.
vt_log() {
    echo "--- $*"
}

# vt_require TOOL...: skip the test unless every tool is available.
# Tools: any command name, or smtp-source / smtp-sink (looked up in $VT_POSTFIX_SBIN).
vt_require() {
    for vt__t in "$@"; do
        case $vt__t in
            smtp-source|smtp-sink|posttls-finger)
                [ -x "$VT_POSTFIX_SBIN/$vt__t" ] || vt_skip "$vt__t is not installed (looked in $VT_POSTFIX_SBIN)" ;;
            *)
                command -v "$vt__t" >/dev/null 2>&1 || vt_skip "$vt__t is not installed" ;;
        esac
    done
}

# vt_init [NAME]: fresh work dir $VT_DIR (also $VT_TMP) = $VIPMTA_TOP_BUILDDIR/t/tmp/NAME
# (NAME defaults to the script's base name); installs the exit trap that stops
# everything started through the harness and, on failure, prints the daemon log tail.
vt_init() {
    VT_NAME=${1:-$(basename "$0" .sh)}
    VT_DIR=$VIPMTA_TOP_BUILDDIR/t/tmp/$VT_NAME
    rm -rf "$VT_DIR" || vt_error "cannot clean $VT_DIR"
    mkdir -p "$VT_DIR" || vt_error "cannot create $VT_DIR"
    VT_DIR=$(cd "$VT_DIR" && pwd)
    VT_TMP=$VT_DIR
    VT_DAEMON_LOG=$VT_DIR/vipmta.log
    : >"$VT_DAEMON_LOG"
    ln -s vipmta.log "$VT_DIR/daemon.log"
    VT_DAEMON_PID=
    VT__ON_EXIT=
    VT__PORTS=
    export VT_DIR VT_TMP VT_DAEMON_LOG
    trap 'vt__exit $?' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

# vt_on_exit CMD: run the shell command CMD from the exit trap (last added runs first).
vt_on_exit() {
    VT__ON_EXIT="$1${VT__ON_EXIT:+; $VT__ON_EXIT}"
}

vt__exit() {
    vt__rc=$1
    trap - EXIT INT TERM HUP
    if [ -n "${VT__ON_EXIT:-}" ]; then
        eval "$VT__ON_EXIT" || :
    fi
    if [ "$vt__rc" -ne 0 ] && [ "$vt__rc" -ne 77 ] && [ -n "${VT_DIR:-}" ]; then
        if [ -s "$VT_DIR/vipmta.log" ]; then
            if [ "$(wc -l <"$VT_DIR/vipmta.log")" -gt 50 ]; then
                echo "=== first 10 lines of $VT_DIR/vipmta.log:" >&2
                head -n 10 "$VT_DIR/vipmta.log" >&2
                echo "=== last 40 lines of $VT_DIR/vipmta.log:" >&2
                tail -n 40 "$VT_DIR/vipmta.log" >&2
            else
                echo "=== $VT_DIR/vipmta.log:" >&2
                cat "$VT_DIR/vipmta.log" >&2
            fi
        fi
        for vt__f in "$VT_DIR"/*.err; do
            [ -s "$vt__f" ] || continue
            echo "=== $vt__f:" >&2
            tail -n 10 "$vt__f" >&2
        done
        echo "=== test work dir kept: $VT_DIR" >&2
    fi
    if [ -n "${VT_DAEMON_PID:-}" ]; then
        kill -TERM "$VT_DAEMON_PID" 2>/dev/null
        vt__reap "$VT_DAEMON_PID" 50 || { kill -KILL "$VT_DAEMON_PID" 2>/dev/null; wait "$VT_DAEMON_PID" 2>/dev/null; }
        VT_DAEMON_PID=
    fi
    if [ -n "${VT_DIR:-}" ]; then
        for vt__f in "$VT_DIR"/*.pid; do
            [ -f "$vt__f" ] || continue
            vt__p=$(cat "$vt__f" 2>/dev/null)
            [ -n "$vt__p" ] && kill -TERM "$vt__p" 2>/dev/null
        done
        for vt__f in "$VT_DIR"/*.pid; do
            [ -f "$vt__f" ] || continue
            vt__p=$(cat "$vt__f" 2>/dev/null)
            [ -n "$vt__p" ] || continue
            vt__reap "$vt__p" 30 || kill -KILL "$vt__p" 2>/dev/null
            rm -f "$vt__f"
        done
    fi
    exit "$vt__rc"
}

# vt__running PID: true while PID exists and is not a zombie.
vt__running() {
    [ -r "/proc/$1/stat" ] || { kill -0 "$1" 2>/dev/null; return; }
    vt__st=
    { read -r vt__st <"/proc/$1/stat"; } 2>/dev/null || return 1
    vt__st=${vt__st##*) }
    case $vt__st in Z*|X*|'') return 1 ;; esac
    return 0
}

# vt__reap PID TENTHS: wait up to TENTHS/10 s for PID to end; reaps it if it is our child.
# Returns 0 when it ended (VT__STATUS holds its exit status when known), 1 on timeout.
vt__reap() {
    vt__i=0
    while vt__running "$1"; do
        vt__i=$((vt__i + 1))
        [ "$vt__i" -gt "$2" ] && return 1
        sleep 0.1
    done
    wait "$1" 2>/dev/null
    VT__STATUS=$?
    return 0
}

# vt_wait_until SECONDS CMD...: run CMD every 0.1 s until it succeeds; 1 on timeout.
vt_wait_until() {
    vt__limit=$(($1 * 10))
    shift
    vt__w=0
    while ! "$@" >/dev/null 2>&1; do
        vt__w=$((vt__w + 1))
        [ "$vt__w" -ge "$vt__limit" ] && return 1
        sleep 0.1
    done
    return 0
}

# vt_assert_eq WHAT EXPECTED ACTUAL: fail unless EXPECTED = ACTUAL (string compare).
# (Compatibility: the older order EXPECTED ACTUAL WHAT is recognised when the first
# argument is a plain number and the third is not.)
vt_assert_eq() {
    vt__what=$1 vt__exp=$2 vt__act=$3
    case $1 in
        ''|*[!0-9-]*) ;;
        *) case $3 in ''|*[!0-9-]*) vt__what=$3 vt__exp=$1 vt__act=$2 ;; esac ;;
    esac
    [ "$vt__exp" = "$vt__act" ] || vt_fail "$vt__what: expected [$vt__exp], got [$vt__act]"
}

# vt_assert_match WHAT PATTERN ACTUAL: fail unless ACTUAL matches the shell glob PATTERN.
vt_assert_match() {
    # shellcheck disable=SC2254
    case $3 in
        $2) ;;
        *) vt_fail "$1: expected to match [$2], got [$3]" ;;
    esac
}

# vt_assert_file_contains WHAT FILE STRING: fail unless FILE contains the fixed STRING.
vt_assert_file_contains() {
    grep -qF -- "$3" "$2" 2>/dev/null || vt_fail "$1: [$3] not found in $2"
}

# ---------------------------------------------------------------- ports

# vt_free_port: print a TCP port currently free on 127.0.0.1 (and on ::1 when the
# host has IPv6), never one this test got before; picked at random below the
# kernel's ephemeral range (the kernel picks one if that range starts too low).
vt_free_port() {
    # shellcheck disable=SC2086 # one argument per port handed out
    vt__port=$("$VT_PYTHON" - ${VT__PORTS:-} <<'EOF'
import random, socket, sys
taken = set(sys.argv[1:])
# below the ephemeral range, so outbound connections (which take ephemeral
# ports) cannot grab the port between now and the moment the test binds it
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
low = low if low > 12000 else 65536
for _ in range(200):
    port = random.randrange(10000, low - 1) if low <= 65535 else 0
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    port = s.getsockname()[1]
    ok = str(port) not in taken
    if ok:
        try:
            s6 = socket.socket(socket.AF_INET6)
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s6.bind(("::1", port))
            except OSError as e:
                ok = e.errno in (97, 99)   # no IPv6 here: fine
            s6.close()
        except OSError:
            pass
    s.close()
    if ok:
        print(port)
        sys.exit(0)
sys.exit(1)
EOF
) || vt_error "no free port found"
    VT__PORTS="${VT__PORTS:-} $vt__port"
    echo "$vt__port"
}

# vt_wait_port HOST PORT [SECONDS]: wait (default 10 s) until HOST:PORT accepts a TCP connection.
vt_wait_port() {
    "$VT_PYTHON" - "$1" "$2" "${3:-10}" <<'EOF'
import socket, sys, time
host, port, limit = sys.argv[1].strip("[]"), int(sys.argv[2]), float(sys.argv[3])
end = time.time() + limit
while True:
    try:
        socket.create_connection((host, port), timeout=1).close()
        sys.exit(0)
    except OSError:
        if time.time() >= end:
            sys.exit(1)
        time.sleep(0.05)
EOF
}

# ---------------------------------------------------------------- the SMTP sink

# vt_start_sink NAME PORT [sink.py args...]: start t/lib/sink.py listening on
# 127.0.0.1:PORT (PORT may also be HOST:PORT or [::1]:PORT; more --listen in args),
# recording to $VT_DIR/NAME.jsonl; returns once it listens. Its pid is in $VT_DIR/NAME.pid.
vt_start_sink() {
    vt__name=$1 vt__port=$2
    shift 2
    case $vt__name in ''|*[!A-Za-z0-9_.-]*) vt_error "vt_start_sink: bad sink name [$vt__name]" ;; esac
    case $vt__port in *:*) vt__listen=$vt__port ;; *) vt__listen=127.0.0.1:$vt__port ;; esac
    rm -f "$VT_DIR/$vt__name.ready"
    "$VT_PYTHON" "$VT_LIB/sink.py" --listen "$vt__listen" --record "$VT_DIR/$vt__name.jsonl" \
        --pidfile "$VT_DIR/$vt__name.ready" "$@" >"$VT_DIR/$vt__name.out" 2>"$VT_DIR/$vt__name.err" &
    vt__pid=$!
    echo "$vt__pid" >"$VT_DIR/$vt__name.pid"
    vt__i=0
    while [ ! -f "$VT_DIR/$vt__name.ready" ]; do
        if ! vt__running "$vt__pid"; then
            wait "$vt__pid" 2>/dev/null
            rm -f "$VT_DIR/$vt__name.pid"
            vt_fail "sink $vt__name did not start: $(cat "$VT_DIR/$vt__name.err")"
        fi
        vt__i=$((vt__i + 1))
        [ "$vt__i" -gt 150 ] && vt_fail "sink $vt__name did not start within 15 s"
        sleep 0.05
    done
}

# vt_stop_sink NAME: stop the sink (SIGTERM) and wait until it has flushed its records.
vt_stop_sink() {
    [ -f "$VT_DIR/$1.pid" ] || return 0
    vt__pid=$(cat "$VT_DIR/$1.pid")
    kill -TERM "$vt__pid" 2>/dev/null
    vt__reap "$vt__pid" 100 || { kill -KILL "$vt__pid" 2>/dev/null; wait "$vt__pid" 2>/dev/null; }
    rm -f "$VT_DIR/$1.pid" "$VT_DIR/$1.ready"
}

# The record query helper shared by vt_sink_count / vt_sink_wait / vt_sink_get.
# argv: MODE FILE ARG EVENT [FIELD VALUE]...   MODE count|wait|get
# FIELD may be dotted (headers.x-test-id); a list field matches when it holds VALUE;
# FIELD~ compares VALUE as a case-insensitive glob; VALUE "null" matches a null field.
vt__query() {
    "$VT_PYTHON" - "$@" <<'EOF'
import fnmatch, json, sys, time
mode, path, arg, event = sys.argv[1:5]
conds = sys.argv[5:]
if len(conds) % 2:
    sys.exit("vt_sink_*: FIELD without VALUE")
conds = [(conds[i], conds[i + 1]) for i in range(0, len(conds), 2)]

def field(rec, name):
    for part in name.split("."):
        if not isinstance(rec, dict):
            return None
        rec = rec.get(part)
    return rec

def same(v, want, glob):
    if v is None:
        return want == "null"
    if isinstance(v, bool):
        v = "true" if v else "false"
    v = str(v)
    return fnmatch.fnmatchcase(v.lower(), want.lower()) if glob else v == want

def match(rec):
    if event != "*" and rec.get("event") != event:
        return False
    for name, want in conds:
        glob = name.endswith("~")
        v = field(rec, name.rstrip("~"))
        if isinstance(v, list):
            if not any(same(x, want, glob) for x in v):
                return False
        elif not same(v, want, glob):
            return False
    return True

count, pos = 0, 0
if mode == "wait":
    want, limit = arg.split(",")
    want, end = int(want), time.time() + float(limit)
while True:
    try:
        with open(path, encoding="utf-8") as f:
            f.seek(pos)
            while True:
                line = f.readline()
                if not line or not line.endswith("\n"):
                    break
                pos = f.tell()
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if match(rec):
                    count += 1
                    if mode == "get":
                        v = field(rec, arg)
                        print(v if isinstance(v, str) else json.dumps(v))
    except FileNotFoundError:
        pass
    if mode != "wait":
        break
    if count >= want:
        break
    if time.time() >= end:
        print(count)
        sys.exit(1)
    time.sleep(0.05)
if mode != "get":
    print(count)
EOF
}

# vt_sink_count NAME EVENT [FIELD VALUE]...: print how many records of EVENT
# ("*" = any) the sink wrote, only those whose FIELD equals VALUE for every pair.
# e.g.  vt_sink_count sink1 message peer 127.0.0.2
#       vt_sink_count sink1 reject stage rcpt rcpt bad@example.test
#       vt_sink_count sink1 message headers.x-test-id t42
#       vt_sink_count sink1 message subject~ 'load *'
vt_sink_count() {
    vt__n=$1 vt__e=$2
    shift 2
    vt__query count "$VT_DIR/$vt__n.jsonl" - "$vt__e" "$@"
}

# vt_sink_wait NAME COUNT SECONDS EVENT [FIELD VALUE]...: wait until at least COUNT
# matching records exist; prints the count reached; returns 1 on timeout.
vt_sink_wait() {
    vt__n=$1 vt__c=$2 vt__s=$3 vt__e=$4
    shift 4
    vt__query wait "$VT_DIR/$vt__n.jsonl" "$vt__c,$vt__s" "$vt__e" "$@"
}

# vt_sink_get NAME EVENT FIELD [FIELD VALUE]...: print FIELD of each matching record, one a line
# (strings bare, anything else as JSON).  e.g.  vt_sink_get sink1 message rcpts subject hello
vt_sink_get() {
    vt__n=$1 vt__e=$2 vt__f=$3
    shift 3
    vt__query get "$VT_DIR/$vt__n.jsonl" "$vt__f" "$vt__e" "$@"
}

# ---------------------------------------------------------------- the daemon

# vt_start_daemon CONFIG: run "$VIPMTA_TOP_BUILDDIR/core/vipmta" -f -c CONFIG in the
# background (stdout and stderr appended to $VT_DIR/vipmta.log, also reachable as
# daemon.log); returns once the daemon listens on every "listen" entry of CONFIG;
# fails with the log tail if it exits or is not ready within $VT_DAEMON_TIMEOUT (30) s.
# $VT_DAEMON_WRAPPER (e.g. "valgrind -q") is put in front of the command when set.
vt_start_daemon() {
    vt__bin=$VIPMTA_TOP_BUILDDIR/core/vipmta
    [ -x "$vt__bin" ] || vt_error "$vt__bin is not built"
    [ -f "$1" ] || vt_error "vt_start_daemon: no config file $1"
    [ -z "${VT_DAEMON_PID:-}" ] || vt_error "vt_start_daemon: a daemon is already running (pid $VT_DAEMON_PID)"
    # shellcheck disable=SC2086
    ${VT_DAEMON_WRAPPER:-} "$vt__bin" -f -c "$1" >>"$VT_DIR/vipmta.log" 2>&1 &
    VT_DAEMON_PID=$!
    "$VT_PYTHON" - "$VT_DAEMON_PID" "$1" "${VT_DAEMON_TIMEOUT:-30}" <<'EOF'
import ipaddress, json, os, sys, time
pid, conf, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
try:
    with open(conf) as f:
        cfg = json.load(f)
except (OSError, ValueError) as e:
    cfg = {}
want = []
for l in cfg.get("listen", []) if isinstance(cfg, dict) else []:
    if isinstance(l, dict) and "port" in l:
        want.append((str(l.get("address", "127.0.0.1")), int(l["port"])))

def alive(p):
    try:
        with open("/proc/%d/stat" % p) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False

def family_tree(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out

def socket_inodes(pids):
    inodes = set()
    for p in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % p):
                try:
                    t = os.readlink("/proc/%d/fd/%s" % (p, fd))
                except OSError:
                    continue
                if t.startswith("socket:["):
                    inodes.add(t[8:-1])
        except OSError:
            pass
    return inodes

def hexaddr(addr):
    ip = ipaddress.ip_address(addr)
    b = ip.packed
    if ip.version == 4:
        return b[::-1].hex().upper()
    return "".join(b[i:i + 4][::-1].hex() for i in range(0, 16, 4)).upper()

def listening():
    found = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[3] == "0A":
                        a, port = p[1].split(":")
                        found.setdefault((a, int(port, 16)), set()).add(p[9])
        except OSError:
            pass
    return found

start = time.time()
end = start + limit
while True:
    if not alive(pid):
        sys.exit(2)
    if not want:
        if time.time() - start >= 0.5:
            sys.exit(0)
    else:
        ours = socket_inodes(family_tree(pid))
        lst = listening()
        ok = True
        for addr, port in want:
            try:
                key = (hexaddr(addr), port)
            except ValueError:
                key = None
            inodes = lst.get(key, set()) if key else set()
            if not (inodes & ours):
                ok = False
                break
        if ok:
            sys.exit(0)
    if time.time() >= end:
        print("the daemon is not listening on %s after %g s" %
              (", ".join("%s:%d" % w for w in want), limit), file=sys.stderr)
        sys.exit(1)
    time.sleep(0.05)
EOF
    vt__rc=$?
    if [ "$vt__rc" -ne 0 ]; then
        if [ "$vt__rc" -eq 2 ]; then
            wait "$VT_DAEMON_PID" 2>/dev/null
            vt__rc=$?
            VT_DAEMON_PID=
            vt_fail "the daemon exited during start-up with status $vt__rc (config $1)"
        fi
        vt_fail "the daemon did not become ready (config $1)"
    fi
}

# vt_daemon_running: true while the daemon started by vt_start_daemon runs.
vt_daemon_running() {
    [ -n "${VT_DAEMON_PID:-}" ] && vt__running "$VT_DAEMON_PID"
}

# vt_stop_daemon [SECONDS]: SIGTERM, wait up to SECONDS (10); returns the daemon's exit
# status (SIGKILL and status 1 if it did not stop in time).
vt_stop_daemon() {
    [ -n "${VT_DAEMON_PID:-}" ] || return 0
    vt__pid=$VT_DAEMON_PID
    VT_DAEMON_PID=
    kill -TERM "$vt__pid" 2>/dev/null
    if vt__reap "$vt__pid" $((${1:-10} * 10)); then
        return "$VT__STATUS"
    fi
    echo "vt_stop_daemon: the daemon did not stop within ${1:-10} s; killed" >&2
    kill -KILL "$vt__pid" 2>/dev/null
    wait "$vt__pid" 2>/dev/null
    return 1
}

# vt_kill_daemon: SIGKILL the daemon and reap it.
vt_kill_daemon() {
    [ -n "${VT_DAEMON_PID:-}" ] || return 0
    kill -KILL "$VT_DAEMON_PID" 2>/dev/null
    wait "$VT_DAEMON_PID" 2>/dev/null
    VT_DAEMON_PID=
    return 0
}

# vt_signal_daemon SIG: send SIG (HUP, USR1, ...) to the daemon.
vt_signal_daemon() {
    [ -n "${VT_DAEMON_PID:-}" ] || vt_error "vt_signal_daemon: no daemon running"
    kill -s "$1" "$VT_DAEMON_PID"
}

# ---------------------------------------------------------------- clients

# vt_swaks ARGS...: run swaks (skip the test if it is missing); --server 127.0.0.1 is
# added unless ARGS name a server. The transcript goes to $VT_DIR/swaks.N.out (the
# latest also as swaks.last.out) and to stdout; returns swaks' exit status.
# swaks here has no IPv6 support: use a python client for ::1.
vt_swaks() {
    vt_require swaks
    vt__srv=--server
    for vt__a in "$@"; do
        case $vt__a in -s|--server|--server=*|--socket|--pipe|-s*) vt__srv= ;; esac
    done
    vt__c=$(cat "$VT_DIR/.swaks_n" 2>/dev/null || echo 0)
    vt__c=$((vt__c + 1))
    echo "$vt__c" >"$VT_DIR/.swaks_n"
    vt__out=$VT_DIR/swaks.$vt__c.out
    if [ -n "$vt__srv" ]; then
        swaks --server 127.0.0.1 "$@" >"$vt__out" 2>&1
    else
        swaks "$@" >"$vt__out" 2>&1
    fi
    vt__rc=$?
    ln -sf "swaks.$vt__c.out" "$VT_DIR/swaks.last.out"
    cat "$vt__out"
    return $vt__rc
}

# vt_smtp_source ARGS...: run Postfix's smtp-source (skip if missing); returns its status.
vt_smtp_source() {
    vt_require smtp-source
    LD_LIBRARY_PATH=$VT_POSTFIX_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$VT_POSTFIX_SBIN/smtp-source" "$@"
}

# ---------------------------------------------------------------- DNS (dnsmasq)

# vt_start_dns PORT [dnsmasq options...]: start dnsmasq answering on 127.0.0.1:PORT (UDP
# and TCP) from the given options only, e.g.
#   vt_start_dns "$DNS_PORT" --mx-host=example.test,mx1.example.test,10 \
#       --host-record=mx1.example.test,127.0.0.1
# Names under .test that are not defined answer NXDOMAIN (--local=/test/); nothing is
# forwarded anywhere. Log (with queries) in $VT_DIR/dnsmasq-PORT.log. Returns once it answers;
# sets VT_DNS_PORT.
vt_start_dns() {
    vt_require dnsmasq
    vt__dport=$1
    shift
    vt__user=
    [ "$(id -u)" = 0 ] && vt__user=--user=root
    dnsmasq --conf-file=/dev/null --no-resolv --no-hosts --no-poll --keep-in-foreground \
        --bind-interfaces --listen-address=127.0.0.1 --port="$vt__dport" --pid-file= \
        ${vt__user:+"$vt__user"} --local=/test/ --log-queries --log-facility="$VT_DIR/dnsmasq-$vt__dport.log" \
        "$@" >"$VT_DIR/dnsmasq-$vt__dport.out" 2>"$VT_DIR/dnsmasq-$vt__dport.err" &
    vt__pid=$!
    echo "$vt__pid" >"$VT_DIR/dnsmasq-$vt__dport.pid"
    vt__i=0
    while :; do
        if ! vt__running "$vt__pid"; then
            wait "$vt__pid" 2>/dev/null
            rm -f "$VT_DIR/dnsmasq-$vt__dport.pid"
            vt_fail "dnsmasq did not start: $(cat "$VT_DIR/dnsmasq-$vt__dport.err" "$VT_DIR/dnsmasq-$vt__dport.log" 2>/dev/null | tail -n 5)"
        fi
        vt_dns_query "$vt__dport" vt-probe.test A >/dev/null 2>&1
        [ $? -le 2 ] && break
        vt__i=$((vt__i + 1))
        [ "$vt__i" -gt 100 ] && vt_fail "dnsmasq does not answer on 127.0.0.1:$vt__dport"
        sleep 0.1
    done
    VT_DNS_PORT=$vt__dport
    export VT_DNS_PORT
}

# vt_stop_dns PORT: stop the dnsmasq started on PORT.
vt_stop_dns() {
    [ -f "$VT_DIR/dnsmasq-$1.pid" ] || return 0
    vt__pid=$(cat "$VT_DIR/dnsmasq-$1.pid")
    kill -TERM "$vt__pid" 2>/dev/null
    vt__reap "$vt__pid" 50 || { kill -KILL "$vt__pid" 2>/dev/null; wait "$vt__pid" 2>/dev/null; }
    rm -f "$VT_DIR/dnsmasq-$1.pid"
}

# vt_dns_query PORT NAME [TYPE]: ask 127.0.0.1:PORT (UDP) for NAME/TYPE (A, AAAA, MX, TXT,
# CNAME, PTR, NS; default A). Prints one answer a line: "127.0.0.1", "10 mx1.example.test".
# Status: 0 answers, 1 no data, 2 NXDOMAIN or other error rcode (printed on stderr), 3 no reply.
vt_dns_query() {
    "$VT_PYTHON" - "$1" "$2" "${3:-A}" <<'EOF'
import random, socket, struct, sys
port, name, qtype = int(sys.argv[1]), sys.argv[2].rstrip("."), sys.argv[3].upper()
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
t = TYPES[qtype]
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"
q += struct.pack(">HH", t, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
for _ in range(3):
    try:
        s.sendto(q, ("127.0.0.1", port))
        r = s.recv(4096)
        if struct.unpack_from(">H", r)[0] == qid:
            break
    except OSError:
        pass
else:
    print("no reply from 127.0.0.1:%d" % port, file=sys.stderr)
    sys.exit(3)

def dname(off):
    labels, jumped, end = [], False, None
    while True:
        n = r[off]
        if n >= 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | r[off + 1]
            continue
        off += 1
        if n == 0:
            break
        labels.append(r[off:off + n].decode())
        off += n
    return ".".join(labels), (end if end is not None else off)

_, flags, qd, an, _, _ = struct.unpack_from(">HHHHHH", r)
rcode = flags & 15
if rcode:
    print({3: "NXDOMAIN", 2: "SERVFAIL", 5: "REFUSED"}.get(rcode, "rcode %d" % rcode), file=sys.stderr)
    sys.exit(2)
off = 12
for _ in range(qd):
    off = dname(off)[1] + 4
out = []
for _ in range(an):
    _, off = dname(off)
    rt, _, _, ln = struct.unpack_from(">HHIH", r, off)
    off += 10
    rd = r[off:off + ln]
    if rt != t:
        pass
    elif rt == 1:
        out.append(socket.inet_ntop(socket.AF_INET, rd))
    elif rt == 28:
        out.append(socket.inet_ntop(socket.AF_INET6, rd))
    elif rt == 15:
        out.append("%d %s" % (struct.unpack_from(">H", rd)[0], dname(off + 2)[0]))
    elif rt in (2, 5, 12):
        out.append(dname(off)[0])
    elif rt == 16:
        out.append(rd[1:1 + rd[0]].decode("utf-8", "replace"))
    off += ln
for a in out:
    print(a)
sys.exit(0 if out else 1)
EOF
}
