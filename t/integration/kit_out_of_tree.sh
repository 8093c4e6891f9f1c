#!/bin/sh
# kit_out_of_tree.sh: the module author kit: install into a staging dir, build modules/example/example.c out of tree with pkg-config, load it in the installed daemon, deliver, see its hook run; the installed modules accept conf/modules-example.json; a Momentum-style module (t/modules/momentum/tos_marker.c) builds with pkg-config --cflags vipmta-momentum and loads.
. "$VIPMTA_TOP_SRCDIR/t/integration/deliver_lib.sh"

dl_init
vt_require make cc pkg-config nm
umask 022 # the loader refuses module files and directories writable by group or others

# Stage the install with DESTDIR: the installed files keep the configured paths
# (the daemon's default module_path, vipmta.pc's prefix), and pkg-config's
# sysroot maps vipmta.pc's paths into the staging dir, as for any staged install.
STAGE=$VT_DIR/stage
vt_on_exit "rm -rf '$STAGE'"
vt_log "make install DESTDIR=<staging dir>"
# not through the make running this test: its flags (TESTS=..., jobserver) are not ours
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
    make -C "$VIPMTA_TOP_BUILDDIR" install DESTDIR="$STAGE" >"$VT_DIR/install.log" 2>&1 ||
    vt_fail "make install failed: $(tail -n 20 "$VT_DIR/install.log")"

PC=$(find "$STAGE" -name vipmta.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$PC" ] || vt_fail "make install installed no vipmta.pc"
export PKG_CONFIG_PATH="${PC%/*}"
export PKG_CONFIG_SYSROOT_DIR="$STAGE"
DAEMON=$(find "$STAGE" -type f -name vipmta -path '*/sbin/*' | head -n 1)
[ -x "$DAEMON" ] || vt_fail "make install installed no sbin/vipmta"

vt_log "pkg-config describes the staged install"
CFLAGS_VIPMTA=$(pkg-config --cflags vipmta) || vt_fail "pkg-config --cflags vipmta failed"
MODULEDIR=$(pkg-config --variable=moduledir vipmta) || vt_fail "pkg-config --variable=moduledir vipmta failed"
vt_log "cflags: $CFLAGS_VIPMTA"
vt_log "moduledir: $MODULEDIR (a module installs there; unstaged: $(PKG_CONFIG_SYSROOT_DIR='' pkg-config --variable=moduledir vipmta))"
case $MODULEDIR in "$STAGE"/*) ;; *) vt_fail "moduledir $MODULEDIR is not inside the staging dir" ;; esac
for m in example sockopt netacl connlog throttle; do
    [ -f "$MODULEDIR/$m.so" ] || vt_fail "the bundled module $m.so is not installed in moduledir $MODULEDIR"
done
INCDIR=$(echo "$CFLAGS_VIPMTA" | tr ' ' '\n' | sed -n "s|^-I\\($STAGE/.*/vipmta\\)\$|\\1|p" | head -n 1)
[ -f "$INCDIR/vipmta_module.h" ] && [ -f "$INCDIR/hooks/core/connection_post_bind.h" ] ||
    vt_fail "the public headers are not where --cflags points ($CFLAGS_VIPMTA)"
vt_assert_eq "pkg-config's ABI major vs vipmta -V" \
    "$("$DAEMON" -V | sed -n 's/.*module ABI \([0-9]*\)\.\([0-9]*\).*/\1.\2/p')" \
    "$(pkg-config --variable=abi_major vipmta).$(pkg-config --variable=abi_minor vipmta)"

vt_log "build modules/example/example.c out of tree, against the installed headers only"
OOT=$VT_DIR/oot
mkdir -p "$OOT"
cp "$VIPMTA_TOP_SRCDIR/modules/example/example.c" "$OOT/" || vt_error "cannot copy example.c"
# shellcheck disable=SC2086 # CFLAGS_VIPMTA is a list of flags
(cd "$OOT" && cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror $CFLAGS_VIPMTA \
    -shared -fPIC -Wl,-z,now -o example.so example.c) >"$VT_DIR/cc.log" 2>&1 ||
    vt_fail "the out-of-tree build failed: $(cat "$VT_DIR/cc.log")"
# the core's symbols stay undefined: they resolve against the daemon at load
nm -D --undefined-only "$OOT/example.so" 2>/dev/null | grep -q 'register_core_connection_post_bind_hook_last' ||
    vt_fail "example.so does not leave register_core_connection_post_bind_hook_last to the daemon"

vt_log "the installed daemon loads it from module_path and calls its hook"
SINK=$(vt_free_port)
vt_start_sink sink "$SINK"
dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\", \"ehlo\": \"vip1.kit.test\"}},
  \"binding_groups\": {\"out\": [\"vip1\"]},
  \"default_binding_group\": \"out\",
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"},
  \"module_path\": [\"$OOT\"],
  \"modules\": [{\"name\": \"example\", \"options\": {\"veto\": false}}]
}"
out=$("$DAEMON" -t -c "$DL_CONF" 2>&1) || vt_fail "vipmta -t with the out-of-tree module: $out"
vt_assert_eq "vipmta -t with the out-of-tree module" ok "$out"
vt_assert_eq "vipmta -M: the module and its file" "example 1.0.0 $OOT/example.so" \
    "$("$DAEMON" -M -c "$DL_CONF" 2>&1 | sed -n 1p)"

# vt_start_daemon runs the build tree's daemon through $VT_DAEMON_WRAPPER: this wrapper
# drops that path and runs the installed daemon instead (exec: same pid)
printf '#!/bin/sh\nshift\nexec "%s" "$@"\n' "$DAEMON" >"$VT_DIR/installed-vipmta"
chmod +x "$VT_DIR/installed-vipmta"
VT_DAEMON_WRAPPER=$VT_DIR/installed-vipmta vt_start_daemon "$DL_CONF"
[ "$(readlink "/proc/$VT_DAEMON_PID/exe")" = "$DAEMON" ] ||
    vt_fail "the daemon running is $(readlink "/proc/$VT_DAEMON_PID/exe"), not the installed $DAEMON"
vt_assert_file_contains "the module's ready line" "$VT_DAEMON_LOG" "info [example] ready (veto off)"
dl_send sender@src.test user@kit.test "out of tree"
vt_sink_wait sink 1 30 message >/dev/null || vt_fail "the message did not reach the sink"
vt_assert_eq "peer of the delivery" 127.0.0.2 "$(vt_sink_get sink message peer rcpts user@kit.test)"
dl_wait 1 10 outcome delivered rcpt user@kit.test || vt_fail "no delivered line in the delivery log"
vt_assert_file_contains "the out-of-tree module's hook line" "$VT_DAEMON_LOG" \
    "info [example] post-bind: domain kit.test binding vip1 (slot 1) fd"
vt_assert_match "its destination" "*info \\[example\\] post-bind: domain kit.test binding vip1 (slot 1) fd [0-9]* destination 127.0.0.1:$SINK" \
    "$(grep 'info \[example\] post-bind: domain kit.test' "$VT_DAEMON_LOG" | head -n 1)"
vt_assert_eq "hook lines for the one connection the sink saw" \
    "$(vt_sink_count sink connect)" "$(grep -c 'info \[example\] post-bind: domain kit.test' "$VT_DAEMON_LOG")"
vt_stop_daemon || vt_fail "the installed daemon exited with status $?"

vt_log "conf/modules-example.json: ok for vipmta -t and -M with the installed modules"
"$VT_PYTHON" - "$VIPMTA_TOP_SRCDIR/conf/modules-example.json" "$VT_DIR/modules-example.json" "$MODULEDIR" "$VT_DIR" <<'EOF' ||
import json, sys
src, dst, moddir, d = sys.argv[1:5]
with open(src) as f:
    cfg = json.load(f)
cfg["module_path"] = [moddir]
cfg["spool_dir"] = d + "/sample-spool"
cfg["delivery_log"] = d + "/sample-delivery.jsonl"
names = []
for m in cfg["modules"]:
    names.append(m["name"])
    if m["name"] == "connlog":
        m["options"]["file"] = d + "/sample-connections.jsonl"
if sorted(names) != ["connlog", "netacl", "sockopt", "throttle"]:
    sys.exit("the sample enables %s, not the four bundled policy modules" % names)
with open(dst, "w") as f:
    json.dump(cfg, f, indent=2)
EOF
    vt_fail "cannot rewrite conf/modules-example.json"
out=$("$DAEMON" -t -c "$VT_DIR/modules-example.json" 2>&1) || vt_fail "vipmta -t on the sample: $out"
# the sample's bindings use documentation addresses, not on this host: -t says so and passes
vt_assert_eq "vipmta -t on conf/modules-example.json: last line" ok "$(printf '%s\n' "$out" | tail -n 1)"
vt_assert_eq "vipmta -t on conf/modules-example.json: anything else is a binding warning" "" \
    "$(printf '%s\n' "$out" | sed '$d' | grep -v '^warning: binding ".*" (slot [0-9]*) suspended: source address ')"
# -M also runs each module's init (binding names are checked there)
out=$("$DAEMON" -M -c "$VT_DIR/modules-example.json" 2>&1) || vt_fail "vipmta -M on the sample: $out"
vt_assert_eq "the sample's post-bind chain" "1 netacl 2 sockopt 3 throttle 4 connlog" \
    "$(echo "$out" | awk '/^[a-z]/ { name = $1 } /hook core_connection_post_bind/ { print $4, name }' |
        sort -n | tr '\n' ' ' | sed 's/ $//')"

vt_log "a Momentum-style module (t/modules/momentum/tos_marker.c) builds out of tree with vipmta-momentum"
CFLAGS_MOMENTUM=$(pkg-config --cflags vipmta-momentum) || vt_fail "pkg-config --cflags vipmta-momentum failed"
vt_log "momentum cflags: $CFLAGS_MOMENTUM"
MINCDIR=$(echo "$CFLAGS_MOMENTUM" | tr ' ' '\n' | sed -n "s|^-I\\($STAGE/.*/vipmta/momentum\\)\$|\\1|p" | head -n 1)
for h in module.h shared_module.h ec_config.h configuration.h ecdict.h dns_ds.h; do
    [ -f "$MINCDIR/$h" ] || vt_fail "Momentum's $h is not where --cflags vipmta-momentum points ($CFLAGS_MOMENTUM)"
done
MOOT=$VT_DIR/moot
mkdir -p "$MOOT"
cp "$VIPMTA_TOP_SRCDIR/t/modules/momentum/tos_marker.c" "$VIPMTA_TOP_SRCDIR/t/modules/momentum/sample.h" "$MOOT/" ||
    vt_error "cannot copy tos_marker.c"
# shellcheck disable=SC2086 # CFLAGS_MOMENTUM is a list of flags
(cd "$MOOT" && cc -std=gnu11 -Wall -Wextra -Werror $CFLAGS_MOMENTUM \
    -shared -fPIC -Wl,-z,now -o tos_marker.so tos_marker.c) >"$VT_DIR/cc-momentum.log" 2>&1 ||
    vt_fail "the out-of-tree build of tos_marker.c failed: $(cat "$VT_DIR/cc-momentum.log")"
dl_config "{
  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\"}},
  \"binding_groups\": {\"out\": [\"vip1\"]},
  \"default_binding_group\": \"out\",
  \"routes\": {\"*\": \"127.0.0.1:$SINK\"},
  \"module_path\": [\"$MOOT\"],
  \"modules\": [{\"name\": \"tos_marker\", \"options\": {\"tos_by_binding\": {\"vip1\": \"32\"}},
                 \"domains\": {\"kit.test\": {\"tos\": 184}}}]
}"
out=$("$DAEMON" -t -c "$DL_CONF" 2>&1) || vt_fail "vipmta -t with the out-of-tree Momentum module: $out"
vt_assert_eq "vipmta -t with the out-of-tree Momentum module" ok "$out"
out=$("$DAEMON" -M -c "$DL_CONF" 2>&1) || vt_fail "vipmta -M with the out-of-tree Momentum module: $out"
vt_assert_match "vipmta -M: the Momentum module, its file and its hook" \
    "tos_marker * $MOOT/tos_marker.so*hook core_connection_post_bind*" "$(echo "$out" | tr '\n' ' ')"
