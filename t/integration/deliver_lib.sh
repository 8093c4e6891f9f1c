#!/bin/sh
# deliver_lib.sh: shared by the deliver_*.sh scenarios: config writer, SMTP injection, delivery-log queries.
# Sourced, not run: the scenarios do `. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"`.

: "${VIPMTA_TOP_SRCDIR:?run through make check (VIPMTA_TOP_SRCDIR is not set)}"
: "${VIPMTA_TOP_BUILDDIR:?run through make check (VIPMTA_TOP_BUILDDIR is not set)}"

. "$VIPMTA_TOP_SRCDIR/t/lib/harness.sh"

# dl_init: the harness's vt_init, plus the daemon's port ($DL_PORT) and the
# delivery log path ($DL_LOG).
dl_init() {
    vt_init
    [ -x "$VIPMTA_TOP_BUILDDIR/core/vipmta" ] || vt_skip "core/vipmta is not built"
    DL_PORT=$(vt_free_port)
    DL_LOG=$VT_DIR/delivery.jsonl
    DL_CONF=$VT_DIR/vipmta.json
}

# dl_config EXTRA_JSON: writes $DL_CONF: listening on 127.0.0.1:$DL_PORT, spool
# and delivery log under $VT_DIR, then the members of the JSON object
# EXTRA_JSON on top (routes, bindings, dns, domains, modules...).
dl_config() {
    "$VT_PYTHON" - "$DL_CONF" "$DL_PORT" "$VT_DIR" "$1" <<'EOF' || vt_error "dl_config: bad JSON: $1"
import json, sys
path, port, d, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
cfg = {
    "hostname": "mta.deliver.test",
    "spool_dir": d + "/spool",
    "listen": [{"address": "127.0.0.1", "port": port}],
    "relay_from": ["127.0.0.0/8"],
    "delivery_log": d + "/delivery.jsonl",
    "log_level": "debug",
}
cfg.update(json.loads(extra))
with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
EOF
}

# dl_send FROM TO[,TO...] SUBJECT [COUNT]: sends COUNT (1) messages over one SMTP
# session to the daemon; the subject of message N is "SUBJECT" (COUNT 1) or
# "SUBJECT N". Fails the test unless every message is accepted.
dl_send() {
    "$VT_PYTHON" - "$DL_PORT" "$1" "$2" "$3" "${4:-1}" <<'EOF' || vt_fail "dl_send $*: not accepted"
import smtplib, sys
port, sender, rcpts, subject, count = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), sys.argv[4], int(sys.argv[5])
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.deliver.test", timeout=30)
s.ehlo()
for n in range(1, count + 1):
    subj = subject if count == 1 else "%s %d" % (subject, n)
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nX-Test-Id: %s\r\n\r\n"
           "Hello.\r\n.a line starting with a dot\r\n..and two\r\nBye.\r\n"
           % (sender or "<>", ", ".join(rcpts), subj, subj))
    refused = s.sendmail(sender, rcpts, msg.encode())
    if refused:
        sys.exit("refused: %r" % refused)
s.quit()
EOF
}

# dl_vetoes BINDING: connections of BINDING vetoed by a module so far (from
# vipmtactl bindings: the delivery log has one line per veto episode, not per try).
dl_vetoes() {
    "$VIPMTA_TOP_BUILDDIR/core/vipmtactl" -c "$DL_CONF" --json bindings 2>/dev/null | "$VT_PYTHON" -c '
import json, sys
r = json.load(sys.stdin)
print([b["vetoes"] for b in r["bindings"] if b["name"] == sys.argv[1]][0])
' "$1" 2>/dev/null || echo 0
}

# dl_wait_vetoes COUNT SECONDS BINDING: waits until BINDING has COUNT vetoes; 1 on timeout.
dl_wait_vetoes() {
    vt__v=0
    while [ "$vt__v" -lt "$(($2 * 10))" ]; do
        [ "$(dl_vetoes "$3")" -ge "$1" ] && return 0
        vt__v=$((vt__v + 1))
        sleep 0.1
    done
    return 1
}

# The delivery-log query helper: MODE count|wait|get, then ARG, then FIELD VALUE pairs
# (VALUE "null" matches null; FIELD~ compares as a glob).
dl__query() {
    "$VT_PYTHON" - "$DL_LOG" "$@" <<'EOF'
import fnmatch, json, sys, time
path, mode, arg = sys.argv[1:4]
conds = sys.argv[4:]
conds = [(conds[i], conds[i + 1]) for i in range(0, len(conds) - 1, 2)]

def match(rec):
    for name, want in conds:
        glob = name.endswith("~")
        v = rec.get(name.rstrip("~"))
        if v is None:
            if want != "null":
                return False
            continue
        v = str(v)
        if not (fnmatch.fnmatchcase(v, want) if glob else v == want):
            return False
    return True

def scan():
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and match(rec):
                    out.append(rec)
    except FileNotFoundError:
        pass
    return out

if mode == "wait":
    want, limit = arg.split(",")
    end = time.time() + float(limit)
    while True:
        n = len(scan())
        if n >= int(want):
            print(n)
            sys.exit(0)
        if time.time() >= end:
            print(n)
            sys.exit(1)
        time.sleep(0.1)
recs = scan()
if mode == "count":
    print(len(recs))
else:
    for r in recs:
        v = r.get(arg)
        print(v if isinstance(v, str) else json.dumps(v))
EOF
}

# dl_count FIELD VALUE...: lines of the delivery log matching every pair.
dl_count() {
    dl__query count - "$@"
}

# dl_wait COUNT SECONDS FIELD VALUE...: wait for COUNT matching lines; 1 on timeout.
dl_wait() {
    dl__c=$1 dl__s=$2
    shift 2
    dl__query wait "$dl__c,$dl__s" "$@" >/dev/null
}

# dl_get FIELD [FIELD VALUE]...: FIELD of each matching line, one a line.
dl_get() {
    dl__f=$1
    shift
    dl__query get "$dl__f" "$@"
}

# dl_spool_ids: the ids of the messages in the spool, one a line.
dl_spool_ids() {
    for dl__f in "$VT_DIR"/spool/queue/*.env; do
        [ -e "$dl__f" ] || continue
        dl__b=${dl__f##*/}
        echo "${dl__b%.env}"
    done
}
