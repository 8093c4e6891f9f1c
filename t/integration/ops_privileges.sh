#!/bin/sh
# ops_privileges.sh: started as root the daemon binds, then runs as `user`/`group` for good (checked in /proc) and mail still flows; refusals: root without user, unknown user, unsafe spool, foreign module owner.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
[ "$(id -u)" = 0 ] || vt_skip "needs root (the test starts the daemon as root and watches it drop to nobody)"
getent passwd nobody >/dev/null 2>&1 || vt_skip "no user nobody"
getent group nogroup >/dev/null 2>&1 || vt_skip "no group nogroup"
NOBODY_UID=$(id -u nobody)
NOGROUP_GID=$(getent group nogroup | cut -d: -f3)
BIN=$VIPMTA_TOP_BUILDDIR/core/vipmta
MODDIR=$VIPMTA_TOP_BUILDDIR/modules
SINK=$(vt_free_port)

# run_refused NAME CONFIG_EXTRA: the daemon (as root, without the harness's
# VIPMTA_RUN_AS_ROOT) must exit 1 at once; its output is in $VT_DIR/NAME.out.
run_refused() {
    DL_CONF=$VT_DIR/$1.json
    dl_config "$2"
    timeout 30 env -u VIPMTA_RUN_AS_ROOT "$BIN" -f -c "$DL_CONF" >"$VT_DIR/$1.out" 2>&1
    rc=$?
    vt_assert_eq "$1: exit status" 1 "$rc"
    OUT=$(cat "$VT_DIR/$1.out")
}

vt_log "root without \"user\": refused, with what to do"
run_refused noroot '{}'
vt_assert_match "refusal" "*refusing to run as root: set \"user\"*\"run_as_root\": true*" "$OUT"
[ ! -d "$VT_DIR/spool/queue" ] || vt_fail "the refused daemon created the spool"

vt_log "\"run_as_root\": true keeps root on purpose"
DL_CONF=$VT_DIR/asroot.json
dl_config '{"run_as_root": true}'
env -u VIPMTA_RUN_AS_ROOT "$BIN" -t -c "$DL_CONF" >"$VT_DIR/asroot.out" 2>&1 || vt_fail "-t: $(cat "$VT_DIR/asroot.out")"
VIPMTA_RUN_AS_ROOT= vt_start_daemon "$DL_CONF"
vt_assert_match "Uid as root" "Uid:*0*0*0*0" "$(grep '^Uid:' "/proc/$VT_DAEMON_PID/status")"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
rm -rf "$VT_DIR/spool"

vt_log "an unknown user: refused by -t and at start"
run_refused baduser '{"user": "no-such-user-vipmta"}'
vt_assert_match "bad user" "*user: no user \"no-such-user-vipmta\" on this system*" "$OUT"
out=$("$BIN" -t -c "$DL_CONF" 2>&1) && vt_fail "-t accepted an unknown user: $out"
vt_assert_match "-t bad user" "*user: no user \"no-such-user-vipmta\"*" "$out"
run_refused badgroup '{"user": "nobody", "group": "no-such-group-vipmta"}'
vt_assert_match "bad group" "*group: no group \"no-such-group-vipmta\" on this system*" "$OUT"
run_refused badname '{"user": "a:b"}'
vt_assert_match "bad name" "*user: expected a user name (like \"vipmta\"), found \"a:b\"*" "$OUT"

vt_log "a world-writable spool directory, one owned by root: refused with the fix"
mkdir -p "$VT_DIR/spool" && chown nobody:nogroup "$VT_DIR/spool" && chmod 777 "$VT_DIR/spool"
run_refused wwspool '{"user": "nobody", "group": "nogroup"}'
vt_assert_match "world-writable spool" "*spool_dir: $VT_DIR/spool is writable by everyone (mode 0777)*refusing it; run chown nobody: $VT_DIR/spool && chmod 700 $VT_DIR/spool*" "$OUT"
chmod 770 "$VT_DIR/spool"
run_refused gwspool '{"user": "nobody", "group": "nogroup"}'
vt_assert_match "group-writable spool" "*$VT_DIR/spool is writable by its group (mode 0770)*" "$OUT"
chown root:root "$VT_DIR/spool" && chmod 700 "$VT_DIR/spool"
run_refused rootspool '{"user": "nobody", "group": "nogroup"}'
vt_assert_match "root's spool" "*spool_dir: $VT_DIR/spool is owned by root, not by nobody, the user vipmta runs as: refusing it; run chown -R nobody: $VT_DIR/spool && chmod 700 $VT_DIR/spool*" "$OUT"
rm -rf "$VT_DIR/spool"

vt_log "a module file owned by another user: refused; as root (vipmta -t) even the run user's: only root's modules load as root"
SO=$MODDIR/.libs/example.so
[ -f "$SO" ] || SO=$MODDIR/example.so
if [ -f "$SO" ]; then
    mkdir -p "$VT_DIR/mods" && cp "$SO" "$VT_DIR/mods/example.so" && chmod 644 "$VT_DIR/mods/example.so"
    chown 4242 "$VT_DIR/mods/example.so"
    DL_CONF=$VT_DIR/modowner.json
    dl_config "{\"user\": \"nobody\", \"module_path\": [\"$VT_DIR/mods\"], \"modules\": [{\"name\": \"example\"}]}"
    out=$("$BIN" -t -c "$DL_CONF" 2>&1) && vt_fail "-t accepted a module owned by uid 4242: $out"
    vt_assert_match "module owner" "*(\"example\"): $VT_DIR/mods/example.so: owner: expected a file owned by root (vipmta runs as root), found uid 4242: refusing it; run chown root: $VT_DIR/mods/example.so*" "$out"
    chown nobody "$VT_DIR/mods/example.so"
    out=$("$BIN" -t -c "$DL_CONF" 2>&1) && vt_fail "-t as root accepted a module owned by the run user: $out"
    vt_assert_match "-t as root with the run user's module" "*owner: expected a file owned by root (vipmta runs as root), found uid $NOBODY_UID: refusing it*" "$out"
    chown root "$VT_DIR/mods/example.so"
    out=$("$BIN" -t -c "$DL_CONF" 2>&1) || vt_fail "-t refused root's module: $out"
    vt_assert_eq "-t with root's module" ok "$out"
else
    vt_log "(no example module built: module owner check not exercised)"
fi

vt_log "user nobody, group nogroup: listening, then every id is unprivileged; mail flows"
vt_start_sink sink "$SINK"
DL_CONF=$VT_DIR/vipmta.json
# the run user's log directory: logs are opened after the drop, as nobody
mkdir -p "$VT_DIR/log" && chown nobody:nogroup "$VT_DIR/log"
DL_LOG=$VT_DIR/log/delivery.jsonl
CONNLOG=$VT_DIR/log/connlog.jsonl
dl_config "{\"user\": \"nobody\", \"group\": \"nogroup\", \"routes\": {\"*\": [\"127.0.0.1:$SINK\"]},
  \"domains\": {\"*\": {\"retry_schedule\": [1]}}, \"delivery_log\": \"$DL_LOG\",
  \"module_path\": [\"$MODDIR\"], \"modules\": [{\"name\": \"connlog\", \"options\": {\"file\": \"$CONNLOG\"}}]}"
VIPMTA_RUN_AS_ROOT= vt_start_daemon "$DL_CONF"
vt_wait_until 10 grep -q "running as user nobody" "$VT_DAEMON_LOG" || vt_fail "no 'running as user nobody' line"
st=/proc/$VT_DAEMON_PID/status
vt_assert_eq "Uid (real, effective, saved, fs)" "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" \
    "$(awk '/^Uid:/ {print $2, $3, $4, $5}' "$st")"
vt_assert_eq "Gid (real, effective, saved, fs)" "$NOGROUP_GID $NOGROUP_GID $NOGROUP_GID $NOGROUP_GID" \
    "$(awk '/^Gid:/ {print $2, $3, $4, $5}' "$st")"
vt_assert_eq "supplementary groups" "$NOGROUP_GID" "$(awk '/^Groups:/ {$1 = ""; print}' "$st" | tr -s ' ' | sed 's/^ //; s/ $//')"
vt_assert_eq "CapEff" "0000000000000000" "$(awk '/^CapEff:/ {print $2}' "$st")"
vt_assert_eq "spool owner" "nobody:nogroup 700" "$(stat -c '%U:%G %a' "$VT_DIR/spool")"
vt_assert_eq "queue owner" "nobody:nogroup 700" "$(stat -c '%U:%G %a' "$VT_DIR/spool/queue")"
vt_assert_eq "delivery log owner" "nobody" "$(stat -c '%U' "$DL_LOG")"
vt_assert_eq "connlog's file, opened by the module's init: its owner" "nobody" "$(stat -c '%U' "$CONNLOG")"
vt_assert_eq "control socket owner and mode" "nobody:nogroup 600" \
    "$(stat -c '%U:%G %a' "$VT_DIR/spool/control.sock")"

dl_send sender@src.test user@dest.test "as nobody" 3
dl_wait 3 20 outcome delivered || vt_fail "not delivered as nobody: $(dl_count outcome delivered) of 3"
vt_sink_wait sink 3 10 message >/dev/null || vt_fail "the sink got $(vt_sink_count sink message) of 3 messages"
vt_wait_until 10 sh -c "! ls '$VT_DIR/spool/queue/' | grep -q ." || vt_fail "the spool is not empty after delivery: $(ls "$VT_DIR/spool/queue")"

vt_log "mail kept in the spool across a restart is the run user's and is delivered"
vt_stop_sink sink
dl_send sender@src.test later@dest.test "queued" 1
dl_wait 1 20 outcome deferred rcpt later@dest.test || vt_fail "no deferral with the sink down"
for f in "$VT_DIR"/spool/queue/*; do
    vt_assert_eq "owner of ${f##*/}" nobody "$(stat -c '%U' "$f")"
done
vt_stop_daemon || vt_fail "the daemon exited with status $?"
[ ! -e "$VT_DIR/spool/control.sock" ] || vt_fail "the daemon, running as nobody, left its control socket behind"
vt_start_sink sink "$SINK"
VIPMTA_RUN_AS_ROOT= vt_start_daemon "$DL_CONF"
dl_wait 1 30 outcome delivered rcpt later@dest.test || vt_fail "the queued message was not delivered after the restart"
vt_stop_daemon || vt_fail "the daemon exited with status $?"
echo "PASS: ops_privileges"
