#!/usr/bin/python3
# dkim_verify.py: verifies every DKIM-Signature of a message with dkimpy (an independent verifier), the public keys from a DNS server or given on the command line.
"""Usage:
  dkim_verify.py [--dns HOST:PORT] [--txt NAME=RECORD ...] [--expect N] FILE

Verifies each DKIM-Signature field of the message in FILE (CRLF or LF lines)
and prints one line per signature:
  pass d=example.test s=sel a=rsa-sha256
  fail d=example.test s=sel a=ed25519-sha256 (why)
Public keys come from --txt NAME=RECORD (NAME like sel._domainkey.example.test)
or from the DNS server at --dns (UDP, with TCP on truncation; no system
resolver is used). Exit 0 when there are at least N signatures (--expect,
default 1) and every one passes, 1 otherwise, 2 on a usage error.
"""
import argparse
import re
import sys

import dkim


def dns_lookup(server):
    import dns.flags
    import dns.message
    import dns.query
    import dns.rdatatype

    host, port = server.rsplit(":", 1)
    host = host.strip("[]")

    def lookup(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode("ascii")
        query = dns.message.make_query(name, dns.rdatatype.TXT)
        reply = dns.query.udp(query, host, port=int(port), timeout=timeout)
        if reply.flags & dns.flags.TC:
            reply = dns.query.tcp(query, host, port=int(port), timeout=timeout)
        for rrset in reply.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                for rdata in rrset:
                    return b"".join(rdata.strings)
        return None

    return lookup


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dns")
    ap.add_argument("--txt", action="append", default=[])
    ap.add_argument("--expect", type=int, default=1)
    ap.add_argument("file")
    args = ap.parse_args()
    static = {}
    for item in args.txt:
        name, _, record = item.partition("=")
        static[name.rstrip(".").lower() + "."] = record.encode("ascii")
    if args.dns:
        lookup = dns_lookup(args.dns)
    elif static:
        def lookup(name, timeout=5):
            if isinstance(name, bytes):
                name = name.decode("ascii")
            name = name.rstrip(".").lower() + "."
            return static.get(name)
    else:
        ap.error("give --dns or --txt")
        return 2
    with open(args.file, "rb") as f:
        message = f.read()
    # dkimpy works on LF or CRLF input; keep the octets as they are
    d = dkim.DKIM(message)
    sigs = [i for i, (name, _) in enumerate(d.headers) if name.lower() == b"dkim-signature"]
    ok = len(sigs) >= args.expect
    for n in range(len(sigs)):
        value = d.headers[sigs[n]][1]
        tags = dict(
            (k.strip(), v.strip())
            for k, _, v in (t.partition(b"=") for t in re.sub(rb"\s+", b"", value).split(b";") if t)
        )
        label = "d=%s s=%s a=%s" % (tags.get(b"d", b"?").decode(), tags.get(b"s", b"?").decode(),
                                    tags.get(b"a", b"?").decode())
        try:
            good = dkim.DKIM(message).verify(idx=n, dnsfunc=lookup)
            why = ""
        except Exception as e:  # a malformed signature is a failure, said
            good = False
            why = str(e)
        if not good and not why:
            why = "signature does not match"
        print(("pass " if good else "fail ") + label + (" (%s)" % why if why else ""))
        ok = ok and good
    if len(sigs) < args.expect:
        print("expected at least %d signature(s), found %d" % (args.expect, len(sigs)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
