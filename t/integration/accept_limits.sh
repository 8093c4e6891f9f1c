#!/bin/sh
# accept_limits.sh: every SMTP server limit answers with its reply code (size, recipients, lines, errors, sessions, timeouts).
. "$VIPMTA_TOP_SRCDIR/t/integration/accept_lib.sh"

vt_init
acc_pyclient
PORT=$(vt_free_port)
acc_config "$VT_TMP/vipmta.json" "$PORT" '["127.0.0.0/8"]' '[]' \
    '{"max_message_size": 20000, "max_recipients": 3, "max_sessions": 5,
      "max_sessions_per_ip": 3, "command_timeout": 2, "data_timeout": 2, "max_errors": 4}'
vt_start_daemon "$VT_TMP/vipmta.json"

"$VT_PYTHON" - "$PORT" "$VT_TMP/spool/queue" <<'EOF' || vt_fail "limits scenario failed"
import sys, os, time, glob, socket
from accsmtp import Client, fail, message
port, q = int(sys.argv[1]), sys.argv[2]

def spooled():
    return len(glob.glob(os.path.join(q, "*.body"))) + len(glob.glob(os.path.join(q, "*.env")))

def transaction(c, rcpts=("r@example.com",)):
    c.expect("MAIL", c.cmd("MAIL FROM:<s@accept.test>"), 250)
    for r in rcpts:
        c.expect("RCPT", c.cmd("RCPT TO:<%s>" % r), 250)
    c.expect("DATA", c.cmd("DATA"), 354)

c = Client(port)
c.ehlo()
# max_message_size at MAIL
c.expect("SIZE over the limit", c.cmd("MAIL FROM:<s@accept.test> SIZE=20001"), 552, "5.3.4")
c.expect("SIZE at the limit", c.cmd("MAIL FROM:<s@accept.test> SIZE=20000"), 250)
c.cmd("RSET")
# max_message_size during DATA: read to the end, then 552
before = spooled()
transaction(c)
c.send(message("limits-big", "x" * 998 + "\r\n") + ("y" * 998 + "\r\n") * 25 + ".\r\n")
c.expect("text over max_message_size", c.reply(), 552, "5.3.4")
c.expect("NOOP after 552", c.cmd("NOOP"), 250)
if spooled() != before:
    fail("a message over max_message_size left files in the spool")
# max_recipients
c.expect("MAIL", c.cmd("MAIL FROM:<s@accept.test>"), 250)
for i in range(3):
    c.expect("RCPT %d" % i, c.cmd("RCPT TO:<r%d@example.com>" % i), 250)
c.expect("4th RCPT", c.cmd("RCPT TO:<r4@example.com>"), 452, "4.5.3")
c.expect("DATA with 3 recipients", c.cmd("DATA"), 354)
c.send(message("limits-rcpts") + ".\r\n")
c.expect("message with 3 recipients", c.reply(), 250, "queued as")
# command line over 512 octets: 500 5.5.6, the rest of the line discarded cleanly
c.expect("long command line", c.cmd("NOOP " + "a" * 600), 500, "5.5.6")
c.expect("NOOP after a long line", c.cmd("NOOP"), 250)
# text line over 1000 octets (incl. CRLF): 554 5.6.0 after the whole message; 1000 is fine
transaction(c)
c.send(message("limits-longline", "z" * 999 + "\r\n") + "after\r\n.\r\n")
c.expect("text line of 1001 octets", c.reply(), 554, "5.6.0")
transaction(c)
c.send(message("limits-line1000", "z" * 998 + "\r\n") + ".\r\n")
c.expect("text line of 1000 octets", c.reply(), 250, "queued as")
c.expect("QUIT", c.cmd("QUIT"), 221)
c.close()

# max_errors: the 4th protocol error is answered, then 421 4.7.0 and close
c = Client(port)
c.ehlo()
for i in range(3):
    c.expect("error %d" % i, c.cmd("BOGUS%d" % i), 500, "5.5.2")
c.expect("4th error", c.cmd("BOGUS4"), 500, "5.5.2")
c.expect("too many errors", c.reply(), 421, "4.7.0")
if not c.closed():
    fail("still connected after too many errors")
c.close()

# max_sessions_per_ip (3) and max_sessions (5)
time.sleep(0.3)
held = [Client(port) for i in range(3)]
for h in held:
    h.expect("session within the limit", h.greeting, 220)
extra = Client(port)
extra.expect("4th session from one address", extra.greeting, 421, "4.7.0")
if not extra.closed():
    fail("the refused session stays open")
extra.close()
others = [Client(port, source=("127.0.0.2", 0)), Client(port, source=("127.0.0.3", 0))]
for h in others:
    h.expect("session from another address", h.greeting, 220)
extra = Client(port, source=("127.0.0.4", 0))
extra.expect("6th session in total", extra.greeting, 421, "4.7.0")
extra.close()
for h in held + others:
    h.cmd("QUIT")
    h.close()
time.sleep(0.5)
again = Client(port)
again.expect("session after the others left", again.greeting, 220)

# command_timeout (2 s): 421 4.4.2 and close
t0 = time.time()
again.expect("command timeout", again.reply(), 421, "4.4.2")
if not 1.5 <= time.time() - t0 <= 6:
    fail("command timeout after %.1f s (command_timeout 2)" % (time.time() - t0))
again.close()

# data_timeout (2 s): 421 4.4.2, the message dropped
before = spooled()
c = Client(port)
c.ehlo()
transaction(c)
c.send("Subject: stalled\r\n\r\npartial")
c.expect("data timeout", c.reply(), 421, "4.4.2")
c.close()
time.sleep(0.2)
if spooled() != before:
    fail("a message that timed out in DATA left files in the spool")
EOF

for what in "552 5.3.4" "452 4.5.3" "554 5.6.0" "too many errors" "max_sessions_per_ip 3" \
    "max_sessions 5" "command_timeout 2s" "data_timeout 2s"; do
    grep -q "\[smtpd\].*$what" "$VT_TMP/daemon.log" || vt_fail "no log line mentioning '$what'"
done
vt_stop_daemon || vt_fail "the daemon did not stop cleanly"
exit 0
