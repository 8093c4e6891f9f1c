#!/bin/sh
# ops_logs.sh: log_format "json" writes one valid JSON object per line (ts, level, component, msg) to log_file or stderr, even for messages with quotes, backslashes and newlines; module lines carry the module's name; text to a file; bad settings refused.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
BIN=$VIPMTA_TOP_BUILDDIR/core/vipmta
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
SO=$MODDIR/.libs/example.so
[ -f "$SO" ] || SO=$MODDIR/example.so
[ -f "$SO" ] || vt_skip "the example module is not built in $MODDIR"
SINK=$(vt_free_port)
vt_start_sink sink "$SINK"

# a module directory whose name holds a quote, a backslash and a newline: the
# loader logs it (debug) in "module example ... loaded from DIR/example.so"
WEIRD="$VT_DIR/mods \"q\" \\ back
slash"
mkdir -p "$WEIRD" && cp "$SO" "$WEIRD/example.so" && chmod 644 "$WEIRD/example.so" && chmod 755 "$WEIRD" ||
    vt_error "cannot make $WEIRD"
WEIRD_JSON=$("$VT_PYTHON" -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$WEIRD")

# check_json FILE: every line is a JSON object; main log lines have exactly
# ts, level, component, msg; prints "LINES MAIN DELIVERY"
check_json() {
    "$VT_PYTHON" - "$1" <<'PY' || vt_fail "$1 is not JSON lines (above)"
import json, re, sys
main = deliv = 0
with open(sys.argv[1], encoding="utf-8") as f:
    lines = f.read().split("\n")
assert lines[-1] == "", "no newline at the end"
for n, line in enumerate(lines[:-1], 1):
    try:
        rec = json.loads(line)
    except ValueError as e:
        sys.exit("line %d: %s: %r" % (n, e, line))
    if not isinstance(rec, dict):
        sys.exit("line %d: not an object: %r" % (n, line))
    if "outcome" in rec:
        deliv += 1
        continue
    if list(rec) != ["ts", "level", "component", "msg"]:
        sys.exit("line %d: keys %r" % (n, list(rec)))
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["ts"]):
        sys.exit("line %d: ts %r" % (n, rec["ts"]))
    if rec["level"] not in ("error", "warning", "notice", "info", "debug"):
        sys.exit("line %d: level %r" % (n, rec["level"]))
    main += 1
print(len(lines) - 1, main, deliv)
PY
}

# has_line FILE COMPONENT MSG_SUBSTRING: a JSON line of COMPONENT whose msg holds MSG_SUBSTRING
has_line() {
    "$VT_PYTHON" - "$@" <<'PY'
import json, sys
path, comp, sub = sys.argv[1:4]
for line in open(path, encoding="utf-8"):
    rec = json.loads(line)
    if rec.get("component") == comp and sub in rec.get("msg", ""):
        sys.exit(0)
sys.exit(1)
PY
}

vt_log "log_format json, log_file (relative to the config): JSON lines, delivery records too"
dl_config "{\"log_format\": \"json\", \"log_file\": \"main.jsonl\", \"delivery_log\": null,
  \"module_path\": [$WEIRD_JSON], \"modules\": [{\"name\": \"example\"}],
  \"routes\": {\"*\": [\"127.0.0.1:$SINK\"]}}"
DL_LOG=$VT_DIR/main.jsonl
vt_start_daemon "$DL_CONF"
[ -f "$VT_DIR/main.jsonl" ] || vt_fail "no log file $VT_DIR/main.jsonl"
dl_send '"john \"q\" public"@src.test' 'user@dest.test' 'quotes "and" \ backslashes' 2
dl_wait 2 20 outcome delivered || vt_fail "delivery records in the main log: $(dl_count outcome delivered) of 2"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
set -- $(check_json "$VT_DIR/main.jsonl")
[ "$2" -ge 5 ] || vt_fail "only $2 main log lines in main.jsonl"
vt_assert_eq "delivery records" 2 "$3"
has_line "$VT_DIR/main.jsonl" core "loaded from $WEIRD/example.so" ||
    vt_fail "no core line with the module path (quote, backslash, newline) intact"
has_line "$VT_DIR/main.jsonl" example "ready (veto off)" || vt_fail "no line with component \"example\""
has_line "$VT_DIR/main.jsonl" core "stopped" || vt_fail "no \"stopped\" line"
if grep -q '\[core\]' "$VT_DAEMON_LOG"; then
    vt_fail "main log lines on stderr although log_file is set: $(head -3 "$VT_DAEMON_LOG")"
fi

vt_log "log_format json without log_file, -f: JSON lines on stderr"
: >"$VT_DAEMON_LOG"
rm -rf "$VT_DIR/spool"
dl_config "{\"log_format\": \"json\", \"module_path\": [\"$MODDIR\"], \"modules\": [{\"name\": \"example\"}]}"
vt_start_daemon "$DL_CONF"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
set -- $(check_json "$VT_DAEMON_LOG")
[ "$2" -ge 4 ] || vt_fail "only $2 JSON lines on stderr"
has_line "$VT_DAEMON_LOG" smtpd "listening on 127.0.0.1:$DL_PORT" || vt_fail "no smtpd listening line"
has_line "$VT_DAEMON_LOG" example "ready" || vt_fail "no example module line"

vt_log "log_file with the default text format"
: >"$VT_DAEMON_LOG"
dl_config "{\"log_file\": \"$VT_DIR/main.log\"}"
vt_start_daemon "$DL_CONF"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z notice \[core\] vipmta .* started' "$VT_DIR/main.log" ||
    vt_fail "no text start line in main.log: $(head -3 "$VT_DIR/main.log")"
grep -q '\[core\]' "$VT_DAEMON_LOG" && vt_fail "log lines on stderr although log_file is set"

if [ "$(id -u)" = 0 ] && getent passwd nobody >/dev/null 2>&1; then
    vt_log "started as root with user nobody: the log files are opened by nobody, in its directory"
    rm -rf "$VT_DIR/spool" "$VT_DIR/logs"
    mkdir -p "$VT_DIR/logs" && chown nobody "$VT_DIR/logs"
    dl_config "{\"log_file\": \"$VT_DIR/logs/main2.log\", \"delivery_log\": \"$VT_DIR/logs/delivery.jsonl\",
      \"user\": \"nobody\"}"
    vt_start_daemon "$DL_CONF"
    vt_wait_until 10 grep -q "spool recovered" "$VT_DIR/logs/main2.log" || vt_fail "no start lines in main2.log"
    vt_assert_eq "main2.log owner and mode" "nobody 640" "$(stat -c '%U %a' "$VT_DIR/logs/main2.log")"
    vt_assert_eq "delivery.jsonl owner" nobody "$(stat -c %U "$VT_DIR/logs/delivery.jsonl")"

    vt_log "SIGHUP with a broken config still reopens the logs (after rotation)"
    mv "$VT_DIR/logs/main2.log" "$VT_DIR/logs/main2.log.1"
    mv "$VT_DIR/logs/delivery.jsonl" "$VT_DIR/logs/delivery.jsonl.1"
    cp "$DL_CONF" "$VT_DIR/good.json"
    printf '{ broken\n' >"$DL_CONF"
    vt_signal_daemon HUP
    vt_wait_until 10 grep -q "reload failed: still running on the old configuration" "$VT_DIR/logs/main2.log" ||
        vt_fail "the reload's refusal is not in the new main2.log: $(tail -3 "$VT_DIR/logs/main2.log.1")"
    [ -f "$VT_DIR/logs/delivery.jsonl" ] || vt_fail "the delivery log was not reopened"
    grep -q "reload" "$VT_DIR/logs/main2.log.1" && vt_fail "the rotated log still got lines after SIGHUP"
    cp "$VT_DIR/good.json" "$DL_CONF"
    vt_stop_daemon || vt_fail "the daemon exited with status $?"
    grep -q 'notice \[core\] stopped' "$VT_DIR/logs/main2.log" || vt_fail "no stopped line after the drop"

    vt_log "a log file the run user replaced by a symbolic link to root's file: refused, the file untouched"
    rm -rf "$VT_DIR/spool"
    printf 'root secret\n' >"$VT_DIR/rootfile" && chmod 600 "$VT_DIR/rootfile"
    rm -f "$VT_DIR/logs/main2.log" && ln -s "$VT_DIR/rootfile" "$VT_DIR/logs/main2.log"
    chown -h nobody "$VT_DIR/logs/main2.log"
    "$BIN" -f -c "$DL_CONF" >"$VT_DIR/symlink.out" 2>&1 && vt_fail "started with log_file a symbolic link"
    vt_assert_match "symbolic link refused" "*log_file: cannot open $VT_DIR/logs/main2.log as the run user: it is a symbolic link (vipmta opens log files only directly)*" \
        "$(cat "$VT_DIR/symlink.out")"
    vt_assert_eq "root's file: owner, mode, content" "root 600 root secret" \
        "$(stat -c '%U %a' "$VT_DIR/rootfile") $(cat "$VT_DIR/rootfile")"
    rm -f "$VT_DIR/logs/main2.log" && ln "$VT_DIR/rootfile" "$VT_DIR/logs/main2.log" 2>/dev/null &&
        { "$BIN" -f -c "$DL_CONF" >"$VT_DIR/hardlink.out" 2>&1 && vt_fail "started with log_file a hard link to root's file"
          vt_assert_match "hard link refused" "*log_file: cannot open $VT_DIR/logs/main2.log as the run user: *" "$(cat "$VT_DIR/hardlink.out")"
          vt_assert_eq "root's file untouched" "root 600 root secret" \
              "$(stat -c '%U %a' "$VT_DIR/rootfile") $(cat "$VT_DIR/rootfile")"; }
    rm -f "$VT_DIR/logs/main2.log"
fi

vt_log "bad settings: refused with the path and what is allowed"
dl_config '{"log_format": "xml"}'
out=$("$BIN" -t -c "$DL_CONF" 2>&1) && vt_fail "-t accepted log_format xml"
vt_assert_eq "-t log_format" "$DL_CONF: log_format: expected \"text\" (the default) or \"json\" (one JSON object per line), found \"xml\"" "$out"
dl_config '{"log_file": ""}'
out=$("$BIN" -t -c "$DL_CONF" 2>&1) && vt_fail "-t accepted an empty log_file"
vt_assert_match "-t log_file" "*log_file: expected a file path, found an empty string*" "$out"
rm -rf "$VT_DIR/spool"
dl_config "{\"log_file\": \"$VT_DIR/no/such/dir/main.log\"}"
"$BIN" -f -c "$DL_CONF" >"$VT_DIR/nolog.out" 2>&1 && vt_fail "started with an unopenable log_file"
vt_assert_match "unopenable log_file" "*log_file: cannot open $VT_DIR/no/such/dir/main.log as the run user: No such file or directory (create its directory*" "$(cat "$VT_DIR/nolog.out")"
echo "PASS: ops_logs"
