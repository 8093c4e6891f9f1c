#!/bin/sh
# ctl_lib.sh: shared by the ctl*.sh scenarios: runs vipmtactl and reads values out of its JSON replies.
# Sourced, not run: the scenarios do `. "$VIPMTA_TOP_SRCDIR/t/integration/ctl_lib.sh"`.

. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

CTL=$VIPMTA_TOP_BUILDDIR/core/vipmtactl

# ctl ARGS...: runs vipmtactl -c $DL_CONF ARGS; stdout in $CTL_OUT, stderr in
# $CTL_ERR, exit status in $CTL_RC (never fails the test by itself).
ctl() {
    CTL_OUT=$("$CTL" -c "$DL_CONF" "$@" 2>"$VT_DIR/ctl.err")
    CTL_RC=$?
    CTL_ERR=$(cat "$VT_DIR/ctl.err")
    printf '%s\n' "vipmtactl $* -> $CTL_RC" >>"$VT_DIR/ctl.log"
    printf '%s\n' "$CTL_OUT" "$CTL_ERR" >>"$VT_DIR/ctl.log"
}

# ctl_ok ARGS...: like ctl, and fails the test unless vipmtactl exited 0.
ctl_ok() {
    ctl "$@"
    [ "$CTL_RC" = 0 ] || vt_fail "vipmtactl $*: exit status $CTL_RC: $CTL_ERR $CTL_OUT"
}

# ctl_py EXPR: evaluates the Python expression EXPR with `r` bound to the JSON
# reply in $CTL_OUT and prints the result (strings bare, the rest as JSON).
ctl_py() {
    printf '%s' "$CTL_OUT" | "$VT_PYTHON" -c '
import json, sys
r = json.loads(sys.stdin.read())
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v))
' "$1" || vt_fail "cannot evaluate $1 on the reply: $CTL_OUT"
}

# ctl_table_cell ROW_KEY COLUMN: from the table in $CTL_OUT, the cell in the
# column titled COLUMN (header line) of the row whose first cell is ROW_KEY.
# Columns are found by the header's positions (the table is aligned); the
# header is the first line of upper-case titles that holds COLUMN.
ctl_table_cell() {
    printf '%s\n' "$CTL_OUT" | "$VT_PYTHON" -c '
import sys
key, col = sys.argv[1], sys.argv[2]
lines = sys.stdin.read().splitlines()
# the header: the first line of upper-case titles holding COLUMN
h = [i for i, l in enumerate(lines) if col in l and l.split()[0].isupper()][0]
head, lines = lines[h], lines[h:]
start = head.index(col)
nxt = [i for i in range(start + len(col), len(head)) if head[i] != " " and head[i - 1] == " "]
end = nxt[0] if nxt else None
for l in lines[1:]:
    if l.split() and l.split()[0] == key:
        print(l[start:end].strip())
        sys.exit(0)
sys.exit("no row " + key)
' "$1" "$2" || vt_fail "no row $1 / column $2 in: $CTL_OUT"
}
