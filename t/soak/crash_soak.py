# crash_soak.py: crash soak for vipmta: injects mail while SIGKILLing and restarting the daemon, then proves no acknowledged mail was lost and duplicates stay within what was in flight at the kills.
"""Two steps, run by t/integration/crash_soak.sh (see docs/soak.md):

  crash_soak.py run   --daemon BIN --config FILE --port N --spool DIR --log FILE
                      --pidfile FILE --state FILE [--kills N] [--seconds S] [--seed X] ...
  crash_soak.py check --state FILE --sink FILE --spool DIR

`run` starts the daemon, injects uniquely numbered messages from several
concurrent SMTP sessions, SIGKILLs the daemon at random moments (seeded;
with --signal TERM it stops it gracefully instead, and each stop must end
with exit status 0 within --term-timeout),
snapshots the spool after every kill, restarts it on the same spool, and at
the end lets the queue drain and stops it with SIGTERM. Everything it saw goes
to the state file (JSON). `check` reads the state file, the sink's records and
the spool, prints the figures and one summary line, and exits 0 (ok), 1 (a
violation) or 99 (the harness could not do its job).

Python 3.7+, standard library only.
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

DOMAINS = ("a.soak.test", "b.soak.test", "c.soak.test")
SENDER = "soak@client.soak.test"


def log(msg):
    print("soak: " + msg, flush=True)


# ----------------------------------------------------------------- spool reading

def read_env(path):
    """Parses an ID.env: (complete, [rcpt...]). complete is False when torn."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False, []
    rcpts, complete = [], False
    for line in data.split(b"\n"):
        if line.startswith(b"rcpt "):
            rcpts.append(unescape(line[5:]))
        elif line.startswith(b"end "):
            complete = data.endswith(b"\n") and len(line.split()) == 3
    return complete, rcpts


def unescape(raw):
    """%XX-decodes an envelope value."""
    out, i = bytearray(), 0
    while i < len(raw):
        if raw[i:i + 1] == b"%" and i + 3 <= len(raw):
            try:
                out.append(int(raw[i + 1:i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", "replace")


def read_final(path):
    """Recipient indexes with a final (D or B) outcome in an ID.st; complete lines only."""
    final = set()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return final
    lines = data.split(b"\n")
    for line in lines[:-1]:                 # the part after the last newline is torn
        p = line.split()
        if len(p) >= 2 and p[0] in (b"D", b"B"):
            try:
                final.add(int(p[1]))
            except ValueError:
                pass
    return final


def body_seq(path):
    """The soak sequence number in an ID.body's X-Test-Id header, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(16384)
    except OSError:
        return None
    head = head.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line[:10].lower() == b"x-test-id:":
            v = line[10:].strip().decode("ascii", "replace")
            if v.startswith("soak-"):
                try:
                    return int(v[5:])
                except ValueError:
                    return None
    return None


def snapshot(spool):
    """What the spool holds right after a kill: for each committed message its
    sequence number and the recipients without a final outcome (those would be
    delivered again); also torn envelopes and messages whose body is unreadable."""
    qdir = os.path.join(spool, "queue")
    pending, torn, unknown = {}, [], []
    try:
        names = os.listdir(qdir)
    except OSError:
        names = []
    for name in names:
        if not name.endswith(".env"):
            continue
        qid = name[:-4]
        complete, rcpts = read_env(os.path.join(qdir, name))
        if not complete:
            torn.append(qid)
            continue
        seq = body_seq(os.path.join(qdir, qid + ".body"))
        if seq is None:
            unknown.append(qid)
            continue
        final = read_final(os.path.join(qdir, qid + ".st"))
        left = [r for i, r in enumerate(rcpts) if i not in final]
        if left:
            pending[str(seq)] = {"id": qid, "rcpts": left}
    return {"pending": pending, "torn": sorted(torn), "unknown": sorted(unknown)}


def queue_count(spool):
    try:
        return sum(1 for n in os.listdir(os.path.join(spool, "queue")) if n.endswith(".env"))
    except OSError:
        return -1


# ----------------------------------------------------------------- the daemon

def listening(pid, port):
    """True when process pid has a TCP socket listening on 127.0.0.1:port (read from /proc)."""
    want = "0100007F:%04X" % port
    inodes = set()
    for name in ("/proc/net/tcp",):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[3] == "0A" and p[1] == want:
                        inodes.add(p[9])
        except OSError:
            pass
    if not inodes:
        return False
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if t.startswith("socket:[") and t[8:-1] in inodes:
            return True
    return False


class Daemon:
    def __init__(self, args):
        self.args = args
        self.proc = None
        self.wrapper = os.environ.get("VT_DAEMON_WRAPPER", "").split()

    def spawn(self):
        logf = open(self.args.log, "ab")
        self.proc = subprocess.Popen(self.wrapper + [self.args.daemon, "-f", "-c", self.args.config],
                                     stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        with open(self.args.pidfile, "w") as f:
            f.write("%d\n" % self.proc.pid)
        return time.time()

    def wait_ready(self, limit):
        """Until the daemon listens; False if it exited or the deadline passed."""
        end = time.time() + limit
        while True:
            if self.proc.poll() is not None:
                return False
            if listening(self.proc.pid, self.args.port):
                return True
            if time.time() >= end:
                return False
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL and reap; returns the time of the kill and whether it was still running."""
        t = time.time()
        running = self.proc.poll() is None
        if running:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.forget()
        return t, running

    def terminate(self, limit):
        """SIGTERM, as an operator's stop under load; returns the time of the
        signal and the exit status (None when it did not exit within `limit` and
        was killed)."""
        t = time.time()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.forget()
        return t, rc

    def stop(self, limit):
        """SIGTERM; the exit status (None if it had to be killed)."""
        return self.terminate(limit)[1]

    def forget(self):
        try:
            os.unlink(self.args.pidfile)
        except OSError:
            pass


# ----------------------------------------------------------------- injection

class SmtpError(Exception):
    pass


class Session:
    """A minimal SMTP client on a raw socket, so that we know exactly which replies were seen."""

    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    raise SmtpError("connection closed")
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                break
        try:
            code = int(lines[-1][:3])
        except ValueError:
            raise SmtpError("bad reply %r" % lines[-1])
        return code, b" ".join(lines).decode("utf-8", "replace")

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Injector:
    """Several client threads sending uniquely numbered messages until stopped."""

    def __init__(self, args, seed):
        self.args = args
        self.seed = seed
        self.lock = threading.Lock()
        self.next_seq = 1
        self.msgs = {}          # seq -> {"rcpts": [...], "state": acked|unacked|rejected, "reply": ...}
        self.stop = threading.Event()
        self.queue_len = 0
        self.refused = 0
        self.sessions = 0
        self.errors = []        # unexpected client-side problems (protocol surprises)
        self.threads = []
        self.run_id = "%x" % (seed & 0xffffffff)

    def counts(self):
        with self.lock:
            n = {"acked": 0, "unacked": 0, "rejected": 0}
            for m in self.msgs.values():
                n[m["state"]] = n.get(m["state"], 0) + 1
            return len(self.msgs), n["acked"], n["unacked"], n["rejected"]

    def message(self, rng, seq, rcpts):
        lines = ["From: <%s>" % SENDER,
                 "To: %s" % ", ".join("<%s>" % r for r in rcpts),
                 "Subject: soak %d" % seq,
                 "Message-ID: <soak-%d.%s@client.soak.test>" % (seq, self.run_id),
                 "X-Test-Id: soak-%d" % seq,
                 ""]
        if rng.random() < 0.03:
            size = rng.randrange(70000, 200000)      # crosses the 64 KiB read size
        else:
            size = rng.randrange(100, 3000)
        n = 0
        while n < size:
            if rng.random() < 0.1:
                line = ".dot-stuffed line of soak %d" % seq
            else:
                line = "soak %d line %d " % (seq, n) + "x" * rng.randrange(0, 70)
            lines.append(line)
            n += len(line) + 2
        body = "\r\n".join(lines) + "\r\n"
        body = body.replace("\r\n.", "\r\n..")
        return body.encode() + b".\r\n"

    def worker(self, idx):
        rng = random.Random(self.seed * 1000 + idx)
        a = self.args
        while not self.stop.is_set():
            while self.queue_len > a.max_queue and not self.stop.is_set():
                time.sleep(0.05)
            try:
                s = Session(a.port, a.client_timeout)
            except OSError:
                with self.lock:
                    self.refused += 1
                time.sleep(rng.uniform(0.02, 0.1))
                continue
            with self.lock:
                self.sessions += 1
            seq = None
            try:
                code, text = s.reply()
                if code != 220:
                    raise SmtpError("greeting: " + text)
                code, text = s.cmd("EHLO client%d.soak.test" % idx)
                if code != 250:
                    raise SmtpError("EHLO: " + text)
                for _ in range(rng.randint(1, 12)):
                    if self.stop.is_set() or self.queue_len > a.max_queue:
                        break
                    nr = rng.choice((1, 1, 1, 2, 3))
                    rcpts = ["r%d@%s" % (j, rng.choice(DOMAINS)) for j in range(nr)]
                    rcpts = list(dict.fromkeys(rcpts))
                    code, text = s.cmd("MAIL FROM:<%s>" % SENDER)
                    if code != 250:
                        raise SmtpError("MAIL: " + text)
                    for r in rcpts:
                        code, text = s.cmd("RCPT TO:<%s>" % r)
                        if code != 250:
                            raise SmtpError("RCPT: " + text)
                    code, text = s.cmd("DATA")
                    if code != 354:
                        raise SmtpError("DATA: " + text)
                    with self.lock:
                        seq = self.next_seq
                        self.next_seq += 1
                        # from here on the daemon may commit it: unacknowledged until the 250
                        self.msgs[seq] = {"rcpts": rcpts, "state": "unacked", "t": time.time()}
                    s.send(self.message(rng, seq, rcpts))
                    code, text = s.reply()
                    with self.lock:
                        m = self.msgs[seq]
                        m["reply"] = text[:200]
                        m["t_reply"] = time.time()
                        m["state"] = "acked" if code == 250 else "rejected"
                    seq = None
                try:
                    s.cmd("QUIT")
                except (OSError, SmtpError):
                    pass
            except socket.timeout:
                # a killed daemon closes its sockets at once: a silent one is worth a note
                with self.lock:
                    self.errors.append("no reply within %g s" % a.client_timeout)
            except (OSError, SmtpError) as e:
                # the daemon died (expected) or said something unexpected; a message whose
                # 250 was not seen stays "unacked". Only the expected losses are quiet.
                if isinstance(e, SmtpError) and "connection closed" not in str(e):
                    with self.lock:
                        self.errors.append(str(e)[:200])
            finally:
                s.close()

    def start(self):
        for i in range(self.args.clients):
            t = threading.Thread(target=self.worker, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self, limit):
        self.stop.set()
        end = time.time() + limit
        for t in self.threads:
            t.join(max(0.1, end - time.time()))
        return all(not t.is_alive() for t in self.threads)


def monitor(inj, spool, stop):
    while not stop.is_set():
        inj.queue_len = queue_count(spool)
        stop.wait(0.2)


# ----------------------------------------------------------------- run

def cmd_run(a):
    seed = a.seed
    rng = random.Random(seed)
    log("seed=%d kills=%d seconds=%g clients=%d (replay the schedule with SOAK_SEED=%d)"
        % (seed, a.kills, a.seconds, a.clients, seed))
    state = {"seed": seed, "kills_wanted": a.kills, "seconds": a.seconds, "kills": [],
             "harness_errors": [], "crashes": [], "instances": []}
    d = Daemon(a)
    inj = Injector(a, seed)
    mon_stop = threading.Event()
    mon = threading.Thread(target=monitor, args=(inj, a.spool, mon_stop), daemon=True)

    def save():
        with inj.lock:
            state["messages"] = {str(k): dict(v) for k, v in sorted(inj.msgs.items())}
        state["client_errors"] = inj.errors[:50]
        state["client_error_count"] = len(inj.errors)
        state["refused_connects"] = inj.refused
        state["sessions"] = inj.sessions
        tmp = a.state + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, a.state)

    def fail(msg):
        state["harness_errors"].append(msg)
        log("ERROR: " + msg)

    t0 = time.time()
    state["t0"] = t0
    try:
        t_spawn = d.spawn()
        if not d.wait_ready(a.ready_timeout):
            fail("the daemon did not start (exit status %s; see its log)" % d.proc.poll())
            return finish_run(a, d, inj, mon_stop, state, save)
        state["instances"].append({"spawn": t_spawn, "ready": time.time()})
        mon.start()
        inj.start()
        t_end = t0 + a.seconds
        restart_cost = 0.5           # running estimate of kill + snapshot + restart, seconds
        startup = 0.3                # running estimate of spawn -> listening, seconds
        early = False                # the next kill hits the daemon before it listens
        for k in range(a.kills):
            inst = state["instances"][-1]
            if early:
                # during start-up: recovery, opening the listeners, first deliveries
                t_wait = inst["spawn"] + rng.uniform(0.0, startup)
            else:
                left = max(0.2, t_end - time.time() - 1.0)
                mean_up = max(0.15, left / (a.kills - k) - restart_cost)
                t_wait = time.time() + rng.uniform(0.3 * mean_up, 1.7 * mean_up)
            while time.time() < t_wait and d.alive():
                time.sleep(min(0.05, max(0.0, t_wait - time.time())))
            c0 = time.time()
            sent, acked, unacked, rejected = inj.counts()
            if not d.alive():
                rc = d.proc.poll()
                state["crashes"].append({"k": k + 1, "status": rc, "t": time.time()})
                fail("the daemon exited on its own (status %s) before kill %d" % (rc, k + 1))
                d.forget()
                return finish_run(a, d, inj, mon_stop, state, save)
            was_ready = listening(d.proc.pid, a.port)
            if a.signal == "TERM":
                t_kill, rc = d.terminate(a.term_timeout)
                if rc == -signal.SIGTERM and not was_ready:
                    # the signal beat the daemon's handlers (before main()
                    # blocks it: the dynamic loader, or valgrind starting up);
                    # it had accepted nothing yet
                    log("SIGTERM %d came before the daemon could handle it (not yet listening): "
                        "it died of the signal, as any program that has not started yet" % (k + 1))
                    rc = 0
                if rc != 0:
                    state["crashes"].append({"k": k + 1, "status": rc, "t": time.time(),
                                             "term": True})
                    fail("SIGTERM %d: the daemon %s" % (k + 1, "did not exit within %g s"
                                                        % a.term_timeout if rc is None
                                                        else "exited with status %s, not 0" % rc))
                    return finish_run(a, d, inj, mon_stop, state, save)
            else:
                t_kill, _ = d.kill()
            snap = snapshot(a.spool)
            inst["kill"] = t_kill
            down = rng.uniform(0.0, 0.3)
            rec = {"k": k + 1, "t": t_kill, "up": round(t_kill - inst["spawn"], 3),
                   "early": not was_ready, "sent": sent, "acked": acked, "unacked": unacked,
                   "snapshot": snap}
            state["kills"].append(rec)
            log("%s %d/%d at +%.2fs after %.2fs up%s: sent=%d acked=%d unacked=%d, spool holds "
                "%d messages (%d torn) -> restart in %.2fs"
                % ("SIGTERM" if a.signal == "TERM" else "kill", k + 1, a.kills, t_kill - t0, rec["up"], " (during start-up)" if rec["early"] else "",
                   sent, acked, unacked, len(snap["pending"]) + len(snap["unknown"]),
                   len(snap["torn"]), down))
            time.sleep(down)
            t_spawn = d.spawn()
            state["instances"].append({"spawn": t_spawn})
            early = k + 1 < a.kills and rng.random() < a.early_kills
            if early:
                continue
            if not d.wait_ready(a.ready_timeout):
                if not d.alive():
                    state["crashes"].append({"k": k + 1, "status": d.proc.poll(), "t": time.time(),
                                             "restart": True})
                    fail("the daemon did not come back after kill %d (exited with status %s)"
                         % (k + 1, d.proc.poll()))
                    d.forget()
                else:
                    fail("the daemon did not listen within %g s after kill %d" % (a.ready_timeout, k + 1))
                return finish_run(a, d, inj, mon_stop, state, save)
            t_ready = time.time()
            state["instances"][-1]["ready"] = t_ready
            startup = 0.7 * startup + 0.3 * (t_ready - t_spawn)
            restart_cost = 0.7 * restart_cost + 0.3 * (t_ready - c0)
        while time.time() < t_end and d.alive():
            time.sleep(0.05)
        return finish_run(a, d, inj, mon_stop, state, save)
    except BaseException as e:
        fail("harness exception: %r" % (e,))
        finish_run(a, d, inj, mon_stop, state, save)
        raise


def finish_run(a, d, inj, mon_stop, state, save):
    """Stops injecting, lets the queue drain, stops the daemon with SIGTERM, saves the state."""
    t0 = state["t0"]
    if not inj.finish(a.client_timeout + 5):
        state["harness_errors"].append("client threads did not stop")
    mon_stop.set()
    state["t_inject_end"] = time.time()
    sent, acked, unacked, rejected = inj.counts()
    log("injection stopped at +%.2fs: sent=%d acked=%d unacked=%d rejected=%d sessions=%d "
        "refused_connects=%d" % (time.time() - t0, sent, acked, unacked, rejected, inj.sessions, inj.refused))
    drained = False
    if d.alive() and not state["harness_errors"]:
        end = time.time() + a.drain
        n = queue_count(a.spool)
        while time.time() < end:
            if not d.alive():
                rc = d.proc.poll()
                state["crashes"].append({"k": None, "status": rc, "t": time.time(), "drain": True})
                state["harness_errors"].append("the daemon exited on its own (status %s) while draining" % rc)
                d.forget()
                break
            n = queue_count(a.spool)
            if n == 0:
                drained = True
                break
            time.sleep(0.1)
        state["drain_left"] = n
        state["drain_seconds"] = round(time.time() - state["t_inject_end"], 2)
        log("drain: %s after %.2fs (%d messages left in queue/)"
            % ("done" if drained else "NOT done", state["drain_seconds"], n))
    state["drained"] = drained
    if d.proc is not None and d.alive():
        rc = d.stop(30)
        state["daemon_exit"] = rc
        log("daemon stopped with SIGTERM: exit status %s" % rc)
    state["t_end"] = time.time()
    save()
    return 0 if not state["harness_errors"] else 99


# ----------------------------------------------------------------- check

def load_sink(path):
    conns, msgs = {}, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("event") == "connect":
                conns[r["conn"]] = r
            elif r.get("event") == "message":
                msgs.append(r)
    return conns, msgs


def cmd_check(a):
    with open(a.state) as f:
        st = json.load(f)
    seed = st["seed"]
    kills = st["kills"]
    msgs = st.get("messages", {})
    violations = []
    notes = []

    def violate(msg):
        violations.append(msg)
        print("soak: VIOLATION: " + msg, flush=True)

    conns, recs = load_sink(a.sink)

    # instance of a sink connection: how many daemons had been spawned again
    # before the sink accepted it. Until the next spawn the connection can only
    # be the old daemon's: after a SIGKILL the sink may still be accepting a
    # connection it asked for, and after a SIGTERM the daemon goes on with its
    # deliveries until it exits; the next one is spawned after that exit and the
    # spool snapshot.
    spawn_times = [i["spawn"] for i in st.get("instances", [])[1:]]
    if len(spawn_times) < len(kills):
        spawn_times = [k["t"] for k in kills]  # a state file without spawn times

    def instance_of(conn_id):
        c = conns.get(conn_id)
        if c is None:
            return None
        return sum(1 for t in spawn_times if t < c["t"])

    received = {}             # (seq, rcpt) -> [(instance, t)]
    other = 0
    for r in recs:
        tid = (r.get("headers") or {}).get("x-test-id") or ""
        if not tid.startswith("soak-"):
            other += 1
            continue
        try:
            seq = int(tid[5:])
        except ValueError:
            other += 1
            continue
        inst = instance_of(r.get("conn"))
        for rc in r.get("rcpts") or []:
            received.setdefault((seq, rc), []).append((inst, r.get("t")))

    # 0. everything received was sent, to the recipients it was sent to
    phantom = sorted(p for p in received if str(p[0]) not in msgs or p[1] not in msgs[str(p[0])]["rcpts"])
    if phantom:
        violate("%d deliveries of messages/recipients that were never sent, e.g. %s" % (len(phantom), phantom[:5]))
    if other:
        violate("%d messages at the sink without a soak id (bounces? the sink never refuses)" % other)

    # 1. every acknowledged (message, recipient) reached the sink
    acked = [int(s) for s, m in msgs.items() if m["state"] == "acked"]
    unacked = [int(s) for s, m in msgs.items() if m["state"] == "unacked"]
    rejected = [int(s) for s, m in msgs.items() if m["state"] == "rejected"]
    acked_pairs = [(s, r) for s in acked for r in msgs[str(s)]["rcpts"]]
    # still in queue/ (only when the run was cut short before the drain): not lost, not delivered
    left = snapshot(a.spool)["pending"]
    queued = {(int(k), r) for k, ent in left.items() for r in ent["rcpts"]}
    missing = sorted(p for p in acked_pairs if p not in received and p not in queued)
    if queued:
        notes.append("%d acknowledged deliveries still in queue/ at the end (not counted as missing)"
                      % sum(1 for p in acked_pairs if p not in received and p in queued))
    if missing:
        violate("%d acknowledged deliveries never reached the sink (DATA LOSS): %s"
                % (len(missing), ", ".join("soak-%d to %s" % p for p in missing[:20])))
        for s in sorted({p[0] for p in missing})[:10]:
            m = msgs[str(s)]
            print("soak:   soak-%d: acknowledged at +%.3fs (%s); spool snapshots holding it: %s"
                  % (s, m.get("t_reply", 0) - st["t0"], m.get("reply", ""),
                     [k["k"] for k in kills if str(s) in k["snapshot"]["pending"]] or "none"), flush=True)
    rejected_delivered = sorted({s for s in rejected if any((s, r) in received for r in msgs[str(s)]["rcpts"])})
    if rejected_delivered:
        violate("%d messages refused at the final dot were delivered anyway: %s"
                % (len(rejected_delivered), rejected_delivered[:10]))
    unacked_delivered = sum(1 for s in unacked if any((s, r) in received for r in msgs[str(s)]["rcpts"]))

    # 2. duplicates, each one within a kill's in-flight set
    # In flight at kill k: (message, recipient) pairs that the killed daemon had
    # handed to the sink (received over one of its connections) and that were
    # still pending in the spool right after the kill: their outcome was not on
    # disk, so the next daemon delivers them again. Nothing else may come twice.
    inflight = []
    exposure = {}             # pair -> number of kills it was in flight at
    ages = []
    for i, k in enumerate(kills):
        pend = k["snapshot"]["pending"]
        n = 0
        for key, ent in pend.items():
            seq = int(key)
            for rc in ent["rcpts"]:
                hits = [t for inst, t in received.get((seq, rc), []) if inst == i]
                if hits:
                    n += 1
                    exposure[(seq, rc)] = exposure.get((seq, rc), 0) + 1
                    ages.append(k["t"] - min(hits))
        inflight.append(n)
    bound = sum(inflight)
    duplicates = 0
    over = []
    for p, hits in received.items():
        extra = len(hits) - 1
        if extra > 0:
            duplicates += extra
            if extra > exposure.get(p, 0):
                over.append((p, len(hits), exposure.get(p, 0), hits))
    if over:
        violate("%d deliveries repeated more often than they were in flight at a kill: %s"
                % (len(over), "; ".join("soak-%d to %s received %d times (instances %s), in flight at %d kills"
                                        % (p[0], p[1], n, [h[0] for h in hits], e)
                                        for p, n, e, hits in over[:10])))
    if duplicates > bound:
        violate("duplicates %d > bound %d" % (duplicates, bound))

    # 3. quarantine: only torn / unacknowledged messages may land there
    qdir = os.path.join(a.spool, "quarantine")
    quarantined, q_unknown = [], []
    try:
        qnames = sorted(os.listdir(qdir))
    except OSError:
        qnames = []
    for qid in sorted({n.split(".")[0] for n in qnames}):
        seq = body_seq(os.path.join(qdir, qid + ".body"))
        if seq is None:
            q_unknown.append(qid)
            notes.append("quarantine/%s.*: no readable body, cannot tell which message it was" % qid)
            continue
        quarantined.append(seq)
        m = msgs.get(str(seq))
        if m is None:
            violate("quarantine/%s.* holds soak-%d, which was never sent" % (qid, seq))
        elif m["state"] == "acked":
            violate("quarantine/%s.* holds soak-%d, which was acknowledged" % (qid, seq))
        else:
            notes.append("quarantine/%s.*: soak-%d (%s: legal, torn at a kill)" % (qid, seq, m["state"]))
    for k in kills:
        for qid in k["snapshot"]["torn"]:
            notes.append("kill %d left a torn envelope %s.env" % (k["k"], qid))

    # harness and liveness
    herr = list(st.get("harness_errors", []))
    for c in st.get("crashes", []):
        violate("the daemon exited on its own: %s" % json.dumps(c))
    if len(kills) < st["kills_wanted"] and not herr:
        herr.append("only %d of %d kills done" % (len(kills), st["kills_wanted"]))
    # (when the run was cut short no drain was attempted)
    if not herr and not st.get("drained"):
        violate("the queue did not drain (%s messages left in queue/)" % st.get("drain_left"))
    if not herr and st.get("daemon_exit") != 0:
        violate("the last daemon did not stop cleanly with SIGTERM (exit status %s)" % st.get("daemon_exit"))
    if len(acked) < max(1, len(kills)):
        herr.append("too little mail got through (%d acknowledged): the soak proved nothing" % len(acked))
    if st.get("client_error_count"):
        notes.append("%d unexpected client-side replies, e.g. %s" % (st["client_error_count"], st["client_errors"][:3]))

    for n in notes[:40]:
        print("soak: note: " + n, flush=True)
    print("soak: per kill (in flight = delivered by the killed daemon, outcome not yet on disk):", flush=True)
    for i, k in enumerate(kills):
        again = sum(1 for key, ent in k["snapshot"]["pending"].items() for rc in ent["rcpts"]
                    if any(inst == i for inst, _ in received.get((int(key), rc), []))
                    and any(inst is not None and inst > i for inst, _ in received.get((int(key), rc), [])))
        print("soak:   kill %2d at +%7.2fs up %5.2fs%s: spool %4d msgs, in flight %3d, delivered again %3d"
              % (k["k"], k["t"] - st["t0"], k["up"], " early" if k["early"] else "      ",
                 len(k["snapshot"]["pending"]), inflight[i], again), flush=True)
    dur = st.get("t_end", time.time()) - st["t0"]
    result = "ok"
    if herr:
        result = "error"
        for e in herr:
            print("soak: HARNESS ERROR: " + e, flush=True)
    if violations:
        result = "FAIL"
    early = sum(1 for k in kills if k["early"])
    print("soak: seed=%d kills=%d early_kills=%d sent=%d acknowledged=%d unacknowledged=%d "
          "unack_delivered=%d rejected=%d ack_deliveries=%d delivered=%d missing=%d duplicates=%d "
          "bound=%d max_inflight_age=%.3fs quarantined=%d drain=%ss duration=%.1fs result=%s"
          % (seed, len(kills), early, len(msgs), len(acked), len(unacked), unacked_delivered,
             len(rejected), len(acked_pairs), len(received), len(missing), duplicates, bound,
             max(ages) if ages else 0.0, len(quarantined) + len(q_unknown),
             st.get("drain_seconds", "?"), dur, result), flush=True)
    if violations:
        return 1
    if herr:
        return 99
    return 0


def main(argv):
    p = argparse.ArgumentParser(description="vipmta crash soak (see docs/soak.md)")
    sub = p.add_subparsers(dest="cmd")
    r = sub.add_parser("run")
    r.add_argument("--daemon", required=True)
    r.add_argument("--config", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--spool", required=True)
    r.add_argument("--log", required=True)
    r.add_argument("--pidfile", required=True)
    r.add_argument("--state", required=True)
    r.add_argument("--kills", type=int, default=20)
    r.add_argument("--seconds", type=float, default=60)
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--clients", type=int, default=4)
    r.add_argument("--max-queue", type=int, default=300, help="clients pause while queue/ holds more")
    r.add_argument("--early-kills", type=float, default=0.15, help="share of kills during start-up")
    r.add_argument("--ready-timeout", type=float, default=60)
    r.add_argument("--client-timeout", type=float, default=20)
    r.add_argument("--drain", type=float, default=60)
    r.add_argument("--signal", choices=["KILL", "TERM"], default="KILL",
                   help="KILL: crashes; TERM: graceful stops under load, each must exit 0")
    r.add_argument("--term-timeout", type=float, default=30,
                   help="seconds a SIGTERMed daemon may take to exit")
    c = sub.add_parser("check")
    c.add_argument("--state", required=True)
    c.add_argument("--sink", required=True)
    c.add_argument("--spool", required=True)
    a = p.parse_args(argv)
    if a.cmd == "run":
        if a.seed is None:
            a.seed = random.SystemRandom().randrange(1, 2 ** 31)
        if a.kills < 1 or a.seconds <= 0:
            p.error("--kills and --seconds must be positive")
        return cmd_run(a)
    if a.cmd == "check":
        return cmd_check(a)
    p.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
