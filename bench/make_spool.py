#!/usr/bin/env python3
# make_spool.py: writes a synthetic vipmta spool (MESSAGES x RCPTS recipients, all deferred a day) for the memory/reload bench.
import os
import sys
import time
import zlib

def main():
    spool, messages, rcpts, domains = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    queue = os.path.join(spool, "queue")
    os.makedirs(queue, exist_ok=True)
    os.makedirs(os.path.join(spool, "quarantine"), exist_ok=True)
    now = int(time.time())
    later = now + 86400
    body = (b"Received: from bench by bench (vipmta) with ESMTP\r\n"
            b"Subject: memory bench\r\n\r\n" + b"x" * 900 + b"\r\n")
    crc = zlib.crc32(body) & 0xFFFFFFFF
    base = int(time.time() * 1e6) & 0xFFFFFFFFFFFFF
    n = 0
    for m in range(messages):
        mid = "%013x%03x" % ((base + m) & 0xFFFFFFFFFFFFF, m % 4096)
        lines = ["version 1", "id " + mid, "received %d" % now, "client 127.0.0.1",
                 "helo bench", "sender sender%d@bench.test" % m, "binding default", "dsn 0"]
        st = []
        for r in range(rcpts):
            lines.append("rcpt user%d.%d@d%d.bench.example" % (m, r, n % domains))
            st.append("T %d 1 %d" % (r, later))
            n += 1
        lines.append("end %d %08x" % (len(body), crc))
        with open(os.path.join(queue, mid + ".body"), "wb") as f:
            f.write(body)
        with open(os.path.join(queue, mid + ".env"), "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(queue, mid + ".st"), "w") as f:
            f.write("\n".join(st) + "\n")
    print(n)

if __name__ == "__main__":
    main()
