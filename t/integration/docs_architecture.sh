#!/bin/sh
# docs_architecture.sh: docs/architecture.md matches the tree: every source file it names exists (in core/ or modules/), and every source file and folder of core/ is named in it.
. "$VIPMTA_TOP_SRCDIR/t/lib/harness.sh"

vt_init
DOC=$VIPMTA_TOP_SRCDIR/docs/architecture.md
[ -f "$DOC" ] || vt_fail "no docs/architecture.md"
"$VT_PYTHON" - "$DOC" "$VIPMTA_TOP_SRCDIR" <<'EOF' || vt_fail "docs/architecture.md does not match core/ (above)"
import os, re, sys
doc, top = sys.argv[1], sys.argv[2]
text = open(doc, encoding="utf-8").read()
named = set(re.findall(r"`(?:[\w/]*/)?([a-z0-9_]+\.c)`", text))
sources = {}
for d, _, files in os.walk(os.path.join(top, "core")):
    for f in files:
        if f.endswith(".c"):
            sources[f] = os.path.relpath(os.path.join(d, f), top)
elsewhere = set()
for d, _, files in os.walk(os.path.join(top, "modules")):
    elsewhere.update(f for f in files if f.endswith(".c"))
bad = 0
for f in sorted(named - set(sources) - elsewhere):
    print("named but missing: %s" % f)
    bad = 1
for f in sorted(set(sources) - named):
    print("not in the map: %s" % sources[f])
    bad = 1
folders = {os.path.dirname(p) for p in sources.values()}
for d in sorted(folders):
    if d != "core" and "`%s/`" % d not in text:
        print("folder not in the map: %s/" % d)
        bad = 1
sys.exit(bad)
EOF
echo "PASS: docs_architecture"
