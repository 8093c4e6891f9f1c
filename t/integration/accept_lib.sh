#!/bin/sh
# accept_lib.sh: shared by the accept_*.sh scenarios: the harness, a config writer and a small Python SMTP client.
# Sourced, not run: the scenarios do `. "$VIPMTA_TOP_SRCDIR/t/integration/accept_lib.sh"`.

: "${VIPMTA_TOP_SRCDIR:?run through make check (VIPMTA_TOP_SRCDIR is not set)}"
: "${VIPMTA_TOP_BUILDDIR:?run through make check (VIPMTA_TOP_BUILDDIR is not set)}"

. "$VIPMTA_TOP_SRCDIR/t/lib/harness.sh"

# acc_config FILE PORT [RELAY_FROM_JSON [RELAY_DOMAINS_JSON [SMTP_JSON]]]
# Writes a daemon config listening on 127.0.0.1:PORT, spooling under
# $VT_TMP/spool, routing everything to a closed port (nothing leaves).
acc_config() {
    acc_file=$1
    acc_port=$2
    acc_relay_from=${3:-'["127.0.0.0/8"]'}
    acc_relay_domains=${4:-'[]'}
    acc_smtp=${5:-'{}'}
    cat >"$acc_file" <<EOF
{
  "hostname": "mx.accept.test",
  "spool_dir": "$VT_TMP/spool",
  "listen": [{"address": "127.0.0.1", "port": $acc_port}],
  "relay_from": $acc_relay_from,
  "relay_domains": $acc_relay_domains,
  "smtp": $acc_smtp,
  "routes": {"*": "127.0.0.1:1"},
  "log_level": "info"
}
EOF
}

# acc_pyclient: writes $VT_TMP/accsmtp.py, the client the scenarios import.
acc_pyclient() {
    PYTHONPATH=$VT_TMP${PYTHONPATH:+:$PYTHONPATH}
    export PYTHONPATH
    cat >"$VT_TMP/accsmtp.py" <<'EOF'
# accsmtp.py: a tiny SMTP client for the accept_*.sh scenarios (written by accept_lib.sh).
import socket, sys, time

def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

class Client:
    def __init__(self, port, host="127.0.0.1", timeout=15, greet=True, source=None):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        if source:
            self.s.bind(source)
        self.s.connect((host, port))
        self.f = self.s.makefile("rb")
        self.greeting = self.reply() if greet else None

    def reply(self):
        """(code, last line text, all lines); code 0 on EOF."""
        lines = []
        while True:
            l = self.f.readline()
            if not l:
                return (0, "<connection closed>", lines)
            t = l.rstrip(b"\r\n").decode("utf-8", "replace")
            lines.append(t)
            if len(t) < 4 or t[3] != "-":
                break
        return (int(lines[-1][:3]) if lines[-1][:3].isdigit() else -1, lines[-1], lines)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def expect(self, what, reply, code, contains=None):
        if reply[0] != code or (contains and contains not in reply[1]):
            fail("%s: expected %d%s, got %r" % (what, code,
                 " containing %r" % contains if contains else "", reply[1]))
        return reply

    def ehlo(self, name="client.accept.test"):
        return self.expect("EHLO", self.cmd("EHLO " + name), 250)

    def close(self):
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass

    def closed(self, wait=5):
        """True once the server has closed the connection (EOF or reset)."""
        self.s.settimeout(wait)
        try:
            while True:
                if not self.s.recv(4096):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

def message(test_id, extra=""):
    return ("From: sender@accept.test\r\nTo: rcpt@accept.test\r\nSubject: %s\r\n"
            "X-Test-Id: %s\r\n%s\r\nbody of %s\r\n" % (test_id, test_id, extra, test_id))
EOF
}

# acc_spool_check: every queue/ID.body has its ID.env and the other way round.
acc_spool_check() {
    acc_q=$VT_TMP/spool/queue
    for acc_f in "$acc_q"/*.body; do
        [ -e "$acc_f" ] || continue
        [ -e "${acc_f%.body}.env" ] || vt_fail "orphan body without envelope: $acc_f"
    done
    for acc_f in "$acc_q"/*.env; do
        [ -e "$acc_f" ] || continue
        [ -e "${acc_f%.env}.body" ] || vt_fail "envelope without body: $acc_f"
    done
}
