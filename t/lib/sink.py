# sink.py: an ESMTP sink for vipmta's tests: accepts mail on loopback, answers by rules, records every event as JSON lines.
"""
Usage:
  sink.py --listen 127.0.0.1:PORT [--listen [::1]:PORT ...] --record FILE
          [--rule STAGE:GLOB=REPLY[:TIMES] ...] [--ehlo-ext PIPELINING,SIZE,8BITMIME]
          [--greeting-code 220] [--delay-ms N] [--hostname NAME] [--pidfile FILE]
          [--save-dir DIR] [--tls-cert FILE --tls-key FILE] [--auth USER:PASSWORD]

With --tls-cert/--tls-key the sink offers STARTTLS (Python's ssl module) and records
the TLS version, cipher, SNI name and session resumption it saw; with --auth it offers
AUTH PLAIN once TLS is up and records the user on each message.

Only loopback addresses (127.0.0.0/8, ::1) may be listened on.

Records (one JSON object per line, appended to --record):
  {"event":"connect","conn":N,"peer":IP,"peer_port":P,"local":"IP:PORT","tos":T|null,"t":TIME}
  {"event":"message","conn":N,"seq":M,"peer":IP,"local":...,"helo":...,"mail_from":...,
   "mail_params":["BODY=8BITMIME","SIZE=123",...],"bare_cr_lf":K (bare CRs and LFs in the data),
   "rcpts":[...],"size":BYTES,"message_id":...,"subject":...,"received_count":K,
   "headers":{"message-id":...,"subject":...,"x-test-id":...,"x-binding":...,"from":...,"to":...},
   "queued_as":ID,"tos":T|null,"t":TIME[,"file":PATH]}
  {"event":"reject","stage":"connect|helo|mail|rcpt|data","conn":N,"peer":IP,
   "rcpt"|"mail_from"|"helo"|"subject":...,"reply":"550 ..."}
  {"event":"disconnect","conn":N,"peer":IP,"messages":K}
  {"event":"tls","conn":N,"peer":IP,"version":"TLSv1.3","cipher":...,"sni":NAME|null,"resumed":B}
  {"event":"tls_failed","conn":N,"peer":IP,"error":...}
  message records also carry "tls" (the version, null in clear), "sni" and "auth_user".

Rules (first matching rule with firings left wins; TIMES counts over all connections):
  connect:GLOB  matched against the peer address; a 4xx/5xx greeting is sent and the connection closed
  helo:GLOB     matched against the EHLO/HELO name
  mail:GLOB     matched against the MAIL FROM address (without <>)
  rcpt:GLOB     matched against the RCPT TO address (without <>)
  data:GLOB     matched against the Subject of the message (the reply to the final dot)
  REPLY is "CODE [ENHANCED] TEXT" (e.g. "451 4.3.0 try later"), or "close" to drop the
  connection without answering.  Any 421 reply also closes the connection.
"""

import argparse
import asyncio
import fnmatch
import ipaddress
import json
import os
import signal
import socket
import ssl
import struct
import sys
import time

IP_PKTOPTIONS = 9            # linux/in.h
IPV6_2292PKTOPTIONS = 6      # linux/in6.h
IPV6_TCLASS = 67
IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)
IPV6_RECVTCLASS = getattr(socket, "IPV6_RECVTCLASS", 66)

HEADER_KEYS = ("message-id", "subject", "x-test-id", "x-binding", "from", "to")
MAX_LINE = 8192


def bare_line_ends(raw):
    """Bare CRs and bare LFs in message data (each should be part of a CRLF)."""
    crlf = raw.count(b"\r\n")
    return (raw.count(b"\r") - crlf) + (raw.count(b"\n") - crlf)


class Rule:
    __slots__ = ("stage", "glob", "reply", "left", "text")

    def __init__(self, text):
        self.text = text
        stage, sep, rest = text.partition(":")
        if not sep or stage not in ("connect", "helo", "mail", "rcpt", "data"):
            raise ValueError("rule %r: STAGE must be connect|helo|mail|rcpt|data" % text)
        glob, sep, reply = rest.partition("=")
        if not sep or not glob or not reply:
            raise ValueError("rule %r: expected STAGE:GLOB=REPLY[:TIMES]" % text)
        self.left = None
        head, sep2, tail = reply.rpartition(":")
        if sep2 and tail.isdigit():
            reply, self.left = head, int(tail)
        reply = reply.strip()
        if reply.lower() != "close":
            if len(reply) < 3 or not reply[:3].isdigit() or reply[0] not in "2345" \
                    or (len(reply) > 3 and reply[3] != " "):
                raise ValueError("rule %r: REPLY must start with a 3-digit code or be 'close'" % text)
        self.stage, self.glob, self.reply = stage, glob.lower(), reply

    def take(self, stage, value):
        if self.stage != stage or self.left == 0:
            return False
        if not fnmatch.fnmatchcase((value or "").lower(), self.glob):
            return False
        if self.left is not None:
            self.left -= 1
        return True


class Recorder:
    """Buffered JSON-lines writer, flushed at most 20 ms after a write and at exit."""

    def __init__(self, path, loop):
        self.f = open(path, "a", encoding="utf-8", buffering=1 << 16)
        self.loop = loop
        self.pending = False

    def write(self, obj):
        self.f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        if not self.pending:
            self.pending = True
            self.loop.call_later(0.02, self.flush)

    def flush(self):
        self.pending = False
        try:
            self.f.flush()
        except ValueError:
            pass

    def close(self):
        try:
            self.f.flush()
            self.f.close()
        except ValueError:
            pass


class Sink:
    def __init__(self, opts, loop):
        self.opts = opts
        self.loop = loop
        self.rules = [Rule(r) for r in opts.rule]
        self.rec = Recorder(opts.record, loop)
        self.nconn = 0
        self.nmsg = 0
        self.hostname = opts.hostname
        self.delay = opts.delay_ms / 1000.0
        self.size_limit = 52428800
        exts = []
        for e in (x.strip() for x in opts.ehlo_ext.split(",")):
            if not e:
                continue
            name, _, val = e.partition("=")
            if name.upper() == "SIZE":
                if val:
                    self.size_limit = int(val)
                exts.append("SIZE %d" % self.size_limit)
            else:
                exts.append(e.upper())
        self.has_size = any(e.startswith("SIZE") for e in exts)
        lines = [self.hostname] + exts
        self.ehlo_reply = "".join(
            "250%s%s\r\n" % ("-" if i < len(lines) - 1 else " ", l) for i, l in enumerate(lines))
        self.esc = "ENHANCEDSTATUSCODES" in exts
        self.exts = exts
        self.ssl_ctx = None
        self.sni = {}  # id(SSLObject) -> the SNI name the client sent
        if opts.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(opts.tls_cert, opts.tls_key)
            ctx.sni_callback = self.on_sni
            self.ssl_ctx = ctx
        self.auth = opts.auth.split(":", 1) if opts.auth else None

    def on_sni(self, sslobj, name, ctx):
        self.sni[id(sslobj)] = name
        return None

    def ehlo_for(self, session):
        """The EHLO reply: STARTTLS until TLS is up, AUTH PLAIN once it is (with --auth)."""
        exts = list(self.exts)
        if self.ssl_ctx and session.tls is None:
            exts.append("STARTTLS")
        if self.auth and session.tls is not None:
            exts.append("AUTH PLAIN")
        lines = [self.hostname] + exts
        return "".join("250%s%s\r\n" % ("-" if i < len(lines) - 1 else " ", l)
                       for i, l in enumerate(lines))

    def rule(self, stage, value):
        for r in self.rules:
            if r.take(stage, value):
                return r.reply
        return None


def tos_of(sock, family):
    """The TOS / traffic class the peer used, as seen by the kernel; None if unavailable."""
    try:
        if family == socket.AF_INET:
            buf = sock.getsockopt(socket.IPPROTO_IP, IP_PKTOPTIONS, 256)
            want = (socket.IPPROTO_IP, socket.IP_TOS)
        else:
            buf = sock.getsockopt(socket.IPPROTO_IPV6, IPV6_2292PKTOPTIONS, 256)
            want = (socket.IPPROTO_IPV6, IPV6_TCLASS)
    except OSError:
        return None
    hdr = struct.calcsize("@Lii")
    off = 0
    while off + hdr <= len(buf):
        clen, level, ctype = struct.unpack_from("@Lii", buf, off)
        if clen < hdr:
            break
        data = buf[off + hdr: off + clen]
        if (level, ctype) == want and data:
            return data[0] if len(data) == 1 else struct.unpack_from("@i", data)[0]
        off += (clen + 7) & ~7
    return None


def addr_of(addr):
    s = addr[0]
    return s[7:] if s.startswith("::ffff:") else s


class Session(asyncio.Protocol):
    __slots__ = ("sink", "tr", "conn", "peer", "local", "family", "buf", "state", "helo",
                 "mail_from", "mail_params", "rcpts", "data", "busy", "closing", "nmsg", "sock", "outq",
                 "tls", "auth_user")

    def __init__(self, sink):
        self.sink = sink
        self.buf = b""
        self.state = "cmd"
        self.helo = None
        self.mail_from = None
        self.mail_params = None
        self.rcpts = []
        self.data = None
        self.busy = False
        self.closing = False
        self.nmsg = 0
        self.outq = []
        self.tls = None
        self.auth_user = None

    # -- plumbing ---------------------------------------------------------
    def connection_made(self, tr):
        s = self.sink
        self.tr = tr
        s.nconn += 1
        self.conn = s.nconn
        self.sock = tr.get_extra_info("socket")
        peer = tr.get_extra_info("peername")
        local = tr.get_extra_info("sockname")
        self.family = self.sock.family
        self.peer = addr_of(peer)
        if self.family == socket.AF_INET6:
            self.local = "[%s]:%d" % (local[0], local[1])
        else:
            self.local = "%s:%d" % (local[0], local[1])
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        s.rec.write({"event": "connect", "conn": self.conn, "peer": self.peer,
                     "peer_port": peer[1], "local": self.local,
                     "tos": tos_of(self.sock, self.family), "t": round(time.time(), 3)})
        r = s.rule("connect", self.peer)
        code = s.opts.greeting_code
        if r is None and code != 220:
            r = "%d %s" % (code, "sink is refusing connections" if code >= 400 else "sink ready")
        if r is not None and (r.lower() == "close" or r[0] in "45"):
            self.reject("connect", None, None, r)
            if r.lower() != "close":
                self.reply(r)
            self.close_after_replies()
            return
        self.reply(r if r else "220 %s ESMTP vipmta test sink" % s.hostname)

    def connection_lost(self, exc):
        self.closing = True
        self.sink.rec.write({"event": "disconnect", "conn": self.conn, "peer": self.peer,
                             "messages": self.nmsg})

    def reply(self, text):
        """Queue one reply (a full line without CRLF, or a pre-formatted multi-line block)."""
        if self.closing and text is not None:
            return
        out = text if text.endswith("\r\n") else text + "\r\n"
        if self.sink.delay > 0:
            self.busy = True
            self.loop_later(out)
        else:
            self.tr.write(out.encode("utf-8", "replace"))

    def loop_later(self, out):
        def fire():
            if not self.tr.is_closing():
                self.tr.write(out.encode("utf-8", "replace"))
            self.busy = False
            if self.outq:
                self.outq.pop(0)()
            else:
                self.process()
        self.sink.loop.call_later(self.sink.delay, fire)

    def close_after_replies(self):
        self.closing = True
        if self.busy:
            self.outq.append(self.tr.close)
        else:
            self.tr.close()

    def data_received(self, data):
        self.buf += data
        if not self.busy:
            self.process()

    def eof_received(self):
        return False

    def reject(self, stage, key, value, reply, **extra):
        obj = {"event": "reject", "stage": stage, "conn": self.conn, "peer": self.peer}
        if key:
            obj[key] = value
        obj.update(extra)
        obj["reply"] = reply
        self.sink.rec.write(obj)

    def answer(self, r, default):
        """Send rule reply r (or default); returns True if the connection goes on."""
        if r is not None and r.lower() == "close":
            self.closing = True
            self.tr.abort()
            return False
        self.reply(r if r is not None else default)
        if r is not None and r.startswith("421"):
            self.close_after_replies()
            return False
        return True

    def ok(self, code, esc, text):
        return "%s %s%s" % (code, esc + " " if self.sink.esc and esc else "", text)

    # -- protocol ---------------------------------------------------------
    def process(self):
        while not self.busy and not self.closing:
            if self.state == "data":
                i = self.buf.find(b"\r\n.\r\n")
                if i < 0:
                    # keep scanning cheap: hold only what is needed to find the terminator
                    if len(self.buf) > 65536:
                        cut = len(self.buf) - 4
                        self.data.append(self.buf[:cut])
                        self.buf = self.buf[cut:]
                    return
                self.data.append(self.buf[:i + 2])
                self.buf = self.buf[i + 5:]
                self.state = "cmd"
                self.end_of_data()
                continue
            i = self.buf.find(b"\n")
            if i < 0:
                if len(self.buf) > MAX_LINE:
                    self.reply(self.ok(500, "5.5.2", "line too long"))
                    self.buf = b""
                return
            line = self.buf[:i].rstrip(b"\r").decode("utf-8", "replace")
            self.buf = self.buf[i + 1:]
            self.command(line)

    def command(self, line):
        s = self.sink
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        arg = arg.strip()
        if verb in ("EHLO", "HELO"):
            if not arg:
                self.reply(self.ok(501, "5.5.4", "%s needs a domain" % verb))
                return
            r = s.rule("helo", arg)
            if r is not None and (r.lower() == "close" or r[0] in "45"):
                self.reject("helo", "helo", arg, r)
                self.answer(r, None)
                return
            self.helo = arg
            self.reset()
            if r is not None:
                self.reply(r)
            elif verb == "EHLO":
                self.reply(s.ehlo_for(self))
            else:
                self.reply("250 %s" % s.hostname)
        elif verb == "MAIL":
            if self.helo is None:
                self.reply(self.ok(503, "5.5.1", "send EHLO first"))
                return
            if self.mail_from is not None:
                self.reply(self.ok(503, "5.5.1", "nested MAIL"))
                return
            addr, params = parse_path(arg, "FROM:")
            if addr is None:
                self.reply(self.ok(501, "5.5.4", "syntax: MAIL FROM:<address>"))
                return
            size = params.get("SIZE")
            if s.has_size and size and size.isdigit() and int(size) > s.size_limit:
                r = self.ok(552, "5.3.4", "message too big")
                self.reject("mail", "mail_from", addr, r)
                self.reply(r)
                return
            r = s.rule("mail", addr)
            if r is not None and (r.lower() == "close" or r[0] in "45"):
                self.reject("mail", "mail_from", addr, r)
                self.answer(r, None)
                return
            self.mail_from = addr
            self.mail_params = sorted(k if v is None or v == "" else "%s=%s" % (k, v)
                                      for k, v in params.items())
            self.reply(r if r else self.ok(250, "2.1.0", "sender ok"))
        elif verb == "RCPT":
            if self.mail_from is None:
                self.reply(self.ok(503, "5.5.1", "need MAIL first"))
                return
            addr, _ = parse_path(arg, "TO:")
            if not addr:
                self.reply(self.ok(501, "5.5.4", "syntax: RCPT TO:<address>"))
                return
            r = s.rule("rcpt", addr)
            if r is not None and (r.lower() == "close" or r[0] in "45"):
                self.reject("rcpt", "rcpt", addr, r)
                self.answer(r, None)
                return
            self.rcpts.append(addr)
            self.reply(r if r else self.ok(250, "2.1.5", "recipient ok"))
        elif verb == "DATA":
            if self.mail_from is None or not self.rcpts:
                self.reply(self.ok(503 if self.mail_from is None else 554, "5.5.1",
                                   "no valid recipients"))
                return
            self.state = "data"
            self.data = []
            self.reply("354 end data with <CR><LF>.<CR><LF>")
        elif verb == "RSET":
            self.reset()
            self.reply(self.ok(250, "2.0.0", "reset"))
        elif verb == "NOOP":
            self.reply(self.ok(250, "2.0.0", "ok"))
        elif verb == "QUIT":
            self.reply(self.ok(221, "2.0.0", "bye"))
            self.close_after_replies()
        elif verb == "VRFY":
            self.reply(self.ok(252, "2.5.2", "cannot verify"))
        elif verb == "STARTTLS" and s.ssl_ctx and self.tls is None:
            self.reply("220 2.0.0 ready to start TLS")
            self.buf = b""          # nothing sent in clear after STARTTLS counts
            self.busy = True
            asyncio.ensure_future(self.starttls())
        elif verb == "AUTH" and s.auth and self.tls is not None:
            mech, _, ir = arg.partition(" ")
            try:
                parts = __import__("base64").b64decode(ir, validate=True).split(b"\0")
            except ValueError:
                parts = []
            if mech.upper() == "PLAIN" and len(parts) == 3 and \
                    [p.decode("utf-8", "replace") for p in parts[1:]] == s.auth:
                self.auth_user = s.auth[0]
                self.reply(self.ok(235, "2.7.0", "authenticated"))
            else:
                self.reject("auth", "auth", mech, "535 5.7.8 bad credentials")
                self.reply(self.ok(535, "5.7.8", "bad credentials"))
        elif verb == "":
            self.reply(self.ok(500, "5.5.2", "empty command"))
        else:
            self.reply(self.ok(502, "5.5.1", "command not implemented"))

    async def starttls(self):
        s = self.sink
        try:
            tr = await s.loop.start_tls(self.tr, self, s.ssl_ctx, server_side=True,
                                        ssl_handshake_timeout=30)
        except (OSError, ssl.SSLError, ConnectionError, asyncio.TimeoutError) as e:
            s.rec.write({"event": "tls_failed", "conn": self.conn, "peer": self.peer,
                         "error": str(e)})
            self.closing = True
            self.tr.abort()
            return
        if tr is None:
            return
        self.tr = tr
        obj = tr.get_extra_info("ssl_object")
        self.tls = {"version": obj.version(), "cipher": obj.cipher()[0],
                    "sni": s.sni.pop(id(obj), None), "resumed": obj.session_reused}
        rec = {"event": "tls", "conn": self.conn, "peer": self.peer}
        rec.update(self.tls)
        s.rec.write(rec)
        self.helo = None
        self.reset()
        self.busy = False
        self.process()

    def reset(self):
        self.mail_from = None
        self.rcpts = []
        self.data = None

    def end_of_data(self):
        s = self.sink
        raw = b"".join(self.data)
        # dot-unstuff: a leading dot on any line is removed
        if raw.startswith(b"."):
            raw = raw[1:]
        if b"\n." in raw:
            raw = raw.replace(b"\n.", b"\n")
        info = parse_headers(raw)
        subject = info["headers"].get("subject")
        r = s.rule("data", subject or "")
        if r is not None and (r.lower() == "close" or r[0] in "45"):
            self.reject("data", "subject", subject, r, mail_from=self.mail_from,
                        rcpts=self.rcpts)
            self.reset()
            self.answer(r, None)
            return
        s.nmsg += 1
        self.nmsg += 1
        qid = "S%d" % s.nmsg
        obj = {"event": "message", "conn": self.conn, "seq": s.nmsg, "peer": self.peer,
               "local": self.local, "helo": self.helo, "mail_from": self.mail_from,
               "mail_params": self.mail_params or [], "rcpts": self.rcpts,
               "size": len(raw), "bare_cr_lf": bare_line_ends(raw),
               "message_id": info["headers"].get("message-id"), "subject": subject,
               "received_count": info["received_count"], "headers": info["headers"],
               "queued_as": qid, "tos": tos_of(self.sock, self.family),
               "tls": self.tls["version"] if self.tls else None,
               "sni": self.tls["sni"] if self.tls else None,
               "auth_user": self.auth_user, "t": round(time.time(), 3)}
        if s.opts.save_dir:
            path = os.path.join(s.opts.save_dir, "%s.eml" % qid)
            with open(path, "wb") as f:
                f.write(raw)
            obj["file"] = path
        s.rec.write(obj)
        self.reset()
        if not self.answer(r, self.ok(250, "2.0.0", "Ok: queued as %s" % qid)):
            return


def parse_path(arg, prefix):
    """'FROM:<a@b> SIZE=1' -> ('a@b', {'SIZE': '1'}); (None, {}) on syntax error."""
    if arg[:len(prefix)].upper() != prefix:
        return None, {}
    rest = arg[len(prefix):].strip()
    if rest.startswith("<"):
        end = rest.find(">")
        if end < 0:
            return None, {}
        addr, rest = rest[1:end], rest[end + 1:]
    else:
        addr, _, rest = rest.partition(" ")
    params = {}
    for p in rest.split():
        k, _, v = p.partition("=")
        params[k.upper()] = v
    return addr, params


def parse_headers(raw):
    end = raw.find(b"\r\n\r\n")
    head = raw if end < 0 else raw[:end]
    headers = {}
    received = 0
    name = None
    name_first = False
    for line in head.decode("utf-8", "replace").split("\r\n"):
        if line[:1] in (" ", "\t"):
            if name in HEADER_KEYS and headers.get(name) is not None and name_first:
                headers[name] += " " + line.strip()
            continue
        k, sep, v = line.partition(":")
        if not sep:
            name = None
            continue
        name = k.strip().lower()
        name_first = False
        if name == "received":
            received += 1
        elif name in HEADER_KEYS and name not in headers:
            headers[name] = v.strip()
            name_first = True
    return {"headers": headers, "received_count": received}


def parse_listen(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("--listen %r: expected HOST:PORT or [V6]:PORT" % text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    ip = ipaddress.ip_address(host)
    if not ip.is_loopback:
        raise ValueError("--listen %r: only loopback addresses are allowed" % text)
    return str(ip), int(port), ip.version


async def main(opts):
    loop = asyncio.get_running_loop()
    sink = Sink(opts, loop)
    servers = []
    for text in opts.listen:
        host, port, ver = parse_listen(text)
        fam = socket.AF_INET6 if ver == 6 else socket.AF_INET
        sock = socket.socket(fam, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            if fam == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
        except OSError:
            pass
        sock.bind((host, port))
        sock.listen(4096)
        sock.setblocking(False)
        servers.append(await loop.create_server(lambda: Session(sink), sock=sock))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if opts.pidfile:
        tmp = opts.pidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(tmp, opts.pidfile)
    print("READY", flush=True)
    await stop.wait()
    for srv in servers:
        srv.close()
    sink.rec.close()


def cli(argv):
    p = argparse.ArgumentParser(description="ESMTP sink for vipmta tests")
    p.add_argument("--listen", action="append", required=True, help="HOST:PORT, loopback only")
    p.add_argument("--record", required=True, help="JSON-lines file to append events to")
    p.add_argument("--rule", action="append", default=[], help="STAGE:GLOB=REPLY[:TIMES]")
    p.add_argument("--ehlo-ext", default="PIPELINING,SIZE,8BITMIME,ENHANCEDSTATUSCODES",
                   help="comma-separated EHLO extensions (SIZE=N sets the limit)")
    p.add_argument("--greeting-code", type=int, default=220)
    p.add_argument("--delay-ms", type=int, default=0, help="delay before every reply")
    p.add_argument("--hostname", default="sink.test")
    p.add_argument("--pidfile")
    p.add_argument("--save-dir", help="write each accepted message to DIR/<queued_as>.eml")
    p.add_argument("--tls-cert", help="offer STARTTLS with this certificate chain (PEM)")
    p.add_argument("--tls-key", help="the private key of --tls-cert (PEM)")
    p.add_argument("--auth", help="USER:PASSWORD accepted with AUTH PLAIN once TLS is up")
    opts = p.parse_args(argv)
    if bool(opts.tls_cert) != bool(opts.tls_key):
        p.error("--tls-cert and --tls-key go together")
    try:
        for r in opts.rule:
            Rule(r)
        for l in opts.listen:
            parse_listen(l)
    except ValueError as e:
        p.error(str(e))
    if opts.save_dir:
        os.makedirs(opts.save_dir, exist_ok=True)
    return opts


if __name__ == "__main__":
    try:
        asyncio.run(main(cli(sys.argv[1:])))
    except OSError as e:
        print("sink.py: %s" % e, file=sys.stderr)
        sys.exit(1)
