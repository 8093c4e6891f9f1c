#!/bin/sh
# ops_manpages.sh: the man pages format without warnings (groff -ww, mandoc -T lint when present), vipmta.json(5) names every top-level key of docs/configuration.md, make install puts them in man5/man8, and systemd-analyze verifies conf/vipmta.service.
. "$VIPMTA_TOP_SRCDIR/t/lib/harness.sh"

vt_init
vt_require groff
MAN=$VIPMTA_TOP_SRCDIR/man
PAGES="vipmta.8 vipmtactl.8 vipmta.json.5"

# render PAGE: plain ASCII text (no overstrike, no escape sequences)
render() {
    groff -man -Tascii -P-cbou "$1" 2>/dev/null
}

vt_log "each page formats without a warning"
for p in $PAGES; do
    [ -f "$MAN/$p" ] || vt_fail "no man page $MAN/$p"
    out=$(groff -man -Tutf8 -ww -z "$MAN/$p" 2>&1) || vt_fail "groff failed on $p: $out"
    [ -z "$out" ] || vt_fail "groff warnings on $p: $out"
    # the rendered page: the NAME line and no unknown requests left as text
    text=$(render "$MAN/$p")
    name=${p%.*}
    printf '%s\n' "$text" | grep -Eq "^ *$name +- " || vt_fail "$p: no NAME line \"$name - ...\""
    printf '%s\n' "$text" | grep -q '^\.' && vt_fail "$p: a roff request was printed as text"
    if command -v mandoc >/dev/null 2>&1; then
        out=$(mandoc -T lint -W warning "$MAN/$p" 2>&1) || vt_fail "mandoc -T lint on $p: $out"
    fi
    if command -v man >/dev/null 2>&1; then
        out=$(MANWIDTH=80 man --warnings=w -l "$MAN/$p" 2>&1 >/dev/null) || vt_fail "man -l $p failed: $out"
        [ -z "$out" ] || vt_fail "man -l warnings on $p: $out"
    fi
done

vt_log "vipmta(8) documents every command line option and the signals"
v8=$(render "$MAN/vipmta.8")
for opt in -c -f -t -M -V -h SIGHUP SIGTERM SIGINT "EXIT STATUS" FILES; do
    printf '%s\n' "$v8" | grep -q -- "$opt" || vt_fail "vipmta.8 does not mention $opt"
done
usage=$("$VIPMTA_TOP_BUILDDIR/core/vipmta" -h 2>&1)
for opt in $(printf '%s\n' "$usage" | sed -n 's/^  \(-[a-zA-Z]\) .*/\1/p'); do
    printf '%s\n' "$v8" | grep -q -- "^ *$opt" || vt_fail "vipmta -h lists $opt but vipmta.8 has no entry for it"
done
for cmd in status bindings domains "queue list" "queue show" "queue flush" "queue delete" "queue bounce" modules reload shutdown -json; do
    render "$MAN/vipmtactl.8" | grep -q -- "$cmd" || vt_fail "vipmtactl.8 does not mention $cmd"
done

vt_log "vipmta.json(5) names every top-level key of docs/configuration.md"
keys=$("$VT_PYTHON" - "$VIPMTA_TOP_SRCDIR/docs/configuration.md" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
sec = text.split("## Top-level keys", 1)[1].split("\n## ", 1)[0]
print(" ".join(re.findall(r"^\| `([a-z_0-9]+)` \|", sec, re.M)))
PY
)
n=0
for k in $keys; do
    n=$((n + 1))
    grep -q "^\.B $k\$" "$MAN/vipmta.json.5" || vt_fail "vipmta.json.5 has no entry (.B $k) for the top-level key $k"
done
[ "$n" -ge 20 ] || vt_fail "found only $n top-level keys in docs/configuration.md"
# and every key the loader accepts is in the docs table (the unknown-key error lists them)
cat >"$VT_DIR/unknown.json" <<'JSON'
{ "no_such_key_at_all": 1 }
JSON
allowed=$("$VIPMTA_TOP_BUILDDIR/core/vipmta" -t -c "$VT_DIR/unknown.json" 2>&1 | sed -n 's/.*(allowed: \(.*\))$/\1/p' | tr -d ',')
[ -n "$allowed" ] || vt_fail "no allowed-key list in vipmta -t's unknown key error"
for k in $allowed; do
    case " $keys " in *" $k "*) ;; *) vt_fail "the config key $k is accepted but not in docs/configuration.md's top-level table" ;; esac
done

vt_log "make install puts the pages in man5 and man8"
if [ -f "$VIPMTA_TOP_BUILDDIR/Makefile" ] && grep -q '^dist_man_MANS' "$VIPMTA_TOP_SRCDIR/Makefile.am"; then
    (cd "$VIPMTA_TOP_BUILDDIR" && make install-man DESTDIR="$VT_DIR/dest" >"$VT_DIR/install.out" 2>&1) ||
        vt_fail "make install-man failed: $(tail -5 "$VT_DIR/install.out")"
    for p in man8/vipmta.8 man8/vipmtactl.8 man5/vipmta.json.5; do
        f=$(find "$VT_DIR/dest" -path "*/man/$p" | head -n 1)
        [ -n "$f" ] || vt_fail "make install did not install $p"
        cmp -s "$f" "$MAN/${p#*/}" || vt_fail "installed $p differs from the source"
    done
else
    vt_fail "the top-level Makefile.am does not install the man pages (dist_man_MANS)"
fi

vt_log "systemd-analyze verify conf/vipmta.service"
UNIT=$VIPMTA_TOP_SRCDIR/conf/vipmta.service
[ -f "$UNIT" ] || vt_fail "no $UNIT"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$UNIT" || vt_fail "the unit has no ExecReload sending SIGHUP"
grep -q '^ExecStart=.*vipmta -f ' "$UNIT" || vt_fail "the unit does not run vipmta -f"
grep -q '^Restart=on-failure$' "$UNIT" || vt_fail "the unit has no Restart=on-failure"
if command -v systemd-analyze >/dev/null 2>&1; then
    # the unit with its paths pointed at this build, and its Documentation=
    # pages found in a man tree of their own
    mkdir -p "$VT_DIR/unit" "$VT_DIR/mantree/man5" "$VT_DIR/mantree/man8"
    cp "$MAN/vipmta.8" "$MAN/vipmtactl.8" "$VT_DIR/mantree/man8/"
    cp "$MAN/vipmta.json.5" "$VT_DIR/mantree/man5/"
    sed "s|/usr/sbin/vipmta|$VIPMTA_TOP_BUILDDIR/core/vipmta|g" "$UNIT" >"$VT_DIR/unit/vipmta.service"
    out=$(MANPATH=$VT_DIR/mantree SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$VT_DIR/unit/vipmta.service" 2>&1)
    rc=$?
    # no systemd running (a container) is not the unit's fault
    out=$(printf '%s\n' "$out" | grep -v -e 'Failed to .*bus' -e 'System has not been booted with systemd' -e '^$' || :)
    [ "$rc" -eq 0 ] || [ -z "$out" ] || vt_fail "systemd-analyze verify (status $rc): $out"
    [ -z "$out" ] || vt_fail "systemd-analyze verify warnings: $out"
else
    vt_log "(systemd-analyze is not installed: unit not verified)"
fi
echo "PASS: ops_manpages"
