#!/bin/sh
# bad_inputs.sh: the bad-input catalogue: every t/bad-configs/*.json and every broken module gives its exact error from vipmta -t.
. "$VIPMTA_TOP_SRCDIR/t/lib/harness.sh"
vt_init

vipmta=$VIPMTA_TOP_BUILDDIR/core/vipmta
catalogue=$VIPMTA_TOP_SRCDIR/t/bad-configs
failures=0
cases=0

# literal: replaces every occurrence of the literal string $1 by $2 on stdin
literal() {
    awk -v s="$1" -v r="$2" '{
        out = ""
        while ((i = index($0, s)) > 0) { out = out substr($0, 1, i - 1) r; $0 = substr($0, i + length(s)) }
        print out $0
    }'
}

# check NAME EXPECTED_STATUS EXPECTED_FILE ACTUAL_FILE STATUS: one case's verdict, with a diff on mismatch
check() {
    cases=$((cases + 1))
    if [ "$5" != "$2" ]; then
        echo "FAIL: $1: exit status $5, expected $2"
        failures=$((failures + 1))
    elif ! cmp -s "$3" "$4"; then
        echo "FAIL: $1: the output differs from the expectation (- expected, + actual):"
        diff -u "$3" "$4" | sed -n '3,$p'
        failures=$((failures + 1))
    fi
}

# ---------------------------------------------------------------- malformed configs
# Each NN-name.json sits next to NN-name.expected: what `vipmta -t` prints,
# with the config's path written as @CONFIG@.
vt_log "configs: $catalogue"
configs=0
for json in "$catalogue"/*.json; do
    [ -f "$json" ] || continue
    name=$(basename "$json" .json)
    expected=${json%.json}.expected
    configs=$((configs + 1))
    if [ ! -f "$expected" ]; then
        echo "FAIL: $name: no $name.expected next to it (write the exact error lines there)"
        failures=$((failures + 1))
        continue
    fi
    status=0
    "$vipmta" -t -c "$json" >"$VT_DIR/$name.raw" 2>&1 || status=$?
    literal "$json" "@CONFIG@" <"$VT_DIR/$name.raw" >"$VT_DIR/$name.out"
    [ "$status" != 0 ] || status="0 (accepted)"
    check "bad-configs/$name" 1 "$expected" "$VT_DIR/$name.out" "$status"
done
[ "$configs" -ge 30 ] || vt_fail "only $configs configs in $catalogue (the catalogue keeps at least 30)"

# ---------------------------------------------------------------- broken modules
testmods=$VIPMTA_TOP_BUILDDIR/t/modules
bundled=$VIPMTA_TOP_BUILDDIR/modules
if [ ! -f "$testmods/good.la" ] || [ ! -f "$testmods/configure_fail.la" ]; then
    vt_error "the test modules are not built in $testmods: run 'make check TESTS=' first"
fi
[ -f "$bundled/netacl.la" ] || vt_error "the bundled modules are not built in $bundled: run make first"
# the loader names the shared object it mapped by its real path
libs=$(cd "$testmods/.libs" && pwd -P)
blibs=$(cd "$bundled/.libs" && pwd -P)
mkdir -p "$VT_DIR/m"
# the ABI version the core was built with: "vipmta X (module ABI MAJOR.MINOR)"
abi=$("$vipmta" -V | sed -n 's/.*(module ABI \([0-9]*\.[0-9]*\)).*/\1/p')
abi_major=${abi%.*}
abi_minor=${abi#*.}
[ -n "$abi" ] || vt_error "cannot read the module ABI version from vipmta -V"

# module NAME MODE STATUS MODULE_PATH_JSON MODULES_JSON [EXTRA_JSON]: writes a config,
# runs `vipmta MODE` on it and compares with the expected lines on stdin.
module() {
    mname=$1 mode=$2 mstatus=$3
    cfg=$VT_DIR/m/$mname.json
    printf '{ "module_path": %s,%s\n  "modules": %s }\n' "$4" "${6:+ $6,}" "$5" >"$cfg"
    cat >"$VT_DIR/m/$mname.expected"
    status=0
    "$vipmta" "$mode" -c "$cfg" >"$VT_DIR/m/$mname.out" 2>&1 || status=$?
    check "modules/$mname" "$mstatus" "$VT_DIR/m/$mname.expected" "$VT_DIR/m/$mname.out" "$status"
}
vt_log "modules: $testmods and $bundled"
tm="[\"$testmods\"]"
bm="[\"$bundled\"]"
mods_before=$cases

module no_descriptor -t 1 "$tm" '[{ "name": "no_descriptor" }]' <<EOF
modules[0] ("no_descriptor"): $libs/no_descriptor.so: descriptor symbol: expected the function vipmta_module_get_descriptor to be exported, found no such symbol: define it with VIPMTA_MODULE_EXPORT(descriptor) (see docs/writing-modules.md), or export a Momentum generic_module_infrastructure named "no_descriptor"
EOF
module bad_magic -t 1 "$tm" '[{ "name": "bad_magic" }]' <<EOF
modules[0] ("bad_magic"): $libs/bad_magic.so: magic: expected 0x564d4f44, found 0xdeadbeef: not a vipmta module descriptor; build it with VIPMTA_MODULE_HEADER() from vipmta_module.h
EOF
module abi_major -t 1 "$tm" '[{ "name": "abi_major" }]' <<EOF
modules[0] ("abi_major"): $libs/abi_major.so: ABI major: expected $abi_major, found $((abi_major + 1)): rebuild the module against this vipmta's headers (module ABI $abi)
EOF
module newer_minor -t 1 "$tm" '[{ "name": "newer_minor" }]' <<EOF
modules[0] ("newer_minor"): $libs/newer_minor.so: ABI minor: expected at most $abi_minor, found $((abi_minor + 1)): the module needs a newer vipmta; upgrade vipmta or rebuild the module against this vipmta's headers (module ABI $abi)
EOF
module small_size -t 1 "$tm" '[{ "name": "small_size" }]' <<EOF
modules[0] ("small_size"): $libs/small_size.so: descriptor size: expected at least 76 bytes, found 16: rebuild the module against this vipmta's headers
EOF
module dup_name -t 1 "$tm" '[{ "name": "dup_name" }]' <<EOF
modules[0] ("dup_name"): $libs/dup_name.so: module name: expected "dup_name" (the name in the config), found "good": list the module as "good" in the config, or rename it in its descriptor
EOF
module dup_name_after_good -t 1 "$tm" '[{ "name": "good" }, { "name": "dup_name" }]' <<EOF
modules[1] ("dup_name"): $libs/dup_name.so: module name: expected a name no other module has, found "good" (already loaded as modules[0] from $libs/good.so): give each module its own name
EOF
module configure_fail -t 1 "$tm" '[{ "name": "configure_fail" }]' <<EOF
modules[0].options.tos: must be a DSCP name or 0-255, not "fast"
EOF
module configure_fail_silent -t 1 "$tm" '[{ "name": "configure_fail", "options": { "silent": true } }]' <<EOF
modules[0] ("configure_fail"): configure failed
EOF
# init runs at start and under -M, not under -t (which starts nothing)
module init_fail -M 1 "$tm" '[{ "name": "good" }, { "name": "init_fail" }]' <<EOF
modules[1] ("init_fail"): init: cannot start: no such thing
modules[1] ("init_fail"): $libs/init_fail.so: init failed (returned -1)
EOF
module not_found -t 1 "[\"$testmods\", \"$bundled\"]" '[{ "name": "nosuch" }]' <<EOF
modules[0] ("nosuch"): cannot open module: not found in $testmods, $bundled (last error: file not found)
EOF
module empty_module_path -t 1 '[]' '[{ "name": "good" }]' <<EOF
modules[0] ("good"): cannot open module: not found in (module_path is empty) (last error: none)
EOF
module name_is_a_path -t 1 "$tm" '[{ "name": "../modules/good" }]' <<EOF
modules[0] ("../modules/good"): cannot open module: expected a file name without '/', found a path: put the module into a module_path directory and list it by its name
EOF

# not a shared object at all
junk=$VT_DIR/m/junk
mkdir -p "$junk" && chmod 755 "$junk"
printf 'not a module\n' >"$junk/junk.so" && chmod 644 "$junk/junk.so"
junk=$(cd "$junk" && pwd -P)
module not_an_elf_file -t 1 "[\"$junk\"]" '[{ "name": "junk" }]' <<EOF
modules[0] ("junk"): cannot open module: not loadable from $junk (last error: $junk/junk.so: file too short)
EOF

# a module anyone in the group may replace is refused, as is one in such a directory
wf=$VT_DIR/m/writable-file
mkdir -p "$wf" && chmod 755 "$wf" && cp "$libs/good.so" "$wf/good.so" && chmod 664 "$wf/good.so"
wf=$(cd "$wf" && pwd -P)
module group_writable_file -t 1 "[\"$wf\"]" '[{ "name": "good" }]' <<EOF
modules[0] ("good"): $wf/good.so: permissions: expected a file not writable by group or others, found mode 0664: refusing it; run chmod go-w $wf/good.so
EOF
wd=$VT_DIR/m/writable-dir
mkdir -p "$wd" && cp "$libs/good.so" "$wd/good.so" && chmod 644 "$wd/good.so" && chmod 777 "$wd"
wd=$(cd "$wd" && pwd -P)
module other_writable_dir -t 1 "[\"$wd\"]" '[{ "name": "good" }]' <<EOF
modules[0] ("good"): $wd/good.so: directory permissions: expected $wd not writable by group or others, found mode 0777: refusing it; run chmod go-w $wd
EOF

# a module calling something the daemon does not export: refused by -t and -M, naming the symbol
for mode in -t -M; do
module "undefined_symbol$mode" "$mode" 1 "$tm" '[{ "name": "undefined_symbol" }]' <<EOF
modules[0] ("undefined_symbol"): $libs/undefined_symbol.so: symbols: expected every symbol to resolve when the module loads, found undefined symbol: vipmta_no_such_function: it calls a function the daemon does not export (the public ABI is core/plugin/vipmta.dynlist) or one of a library it is not linked with; rebuild it against this vipmta's headers and link what it uses
EOF
done
# Momentum-style modules: the same checks on their EC_MODULE_INIT record
module ec_bad_version -t 1 "$tm" '[{ "name": "ec_bad_version" }]' <<EOF
modules[0] ("ec_bad_version"): $libs/ec_bad_version.so: ABI major: expected $abi_major, found $((abi_major + 1)): rebuild the module against this vipmta's headers (module ABI $abi)
EOF
module ec_deprecated -t 1 "$tm" '[{ "name": "ec_deprecated" }]' <<EOF
modules[0] ("ec_deprecated"): $libs/ec_deprecated.so: callbacks: expected the deprecated callbacks to be NULL, found module_init set: move its work to conf_setup or ext_init (Momentum 3 no longer calls it)
EOF
# scopes a module does not read
module scope_not_taken -t 1 "$tm" '[{ "name": "good", "bindings": { "default": { "veto": true } } }]' <<EOF
modules[0].bindings: module "good" takes no per-binding options (it reads "options" only): move them there or remove "bindings"
EOF

# bundled modules with options they refuse: errors under modules[i].options (or the scope)
module example_bad_option -t 1 "$bm" '[{ "name": "example", "options": { "veto": "no" } }]' <<EOF
modules[0].options.veto: must be true or false, not a string
EOF
module sockopt_unknown_key -t 1 "$bm" '[{ "name": "sockopt", "options": { "tso": 1 } }]' <<EOF
modules[0].options: unknown key "tso" (allowed: tos, traffic_class, mark, keepalive, user_timeout_ms, nodelay, congestion, sndbuf, rcvbuf, veto_on_error)
EOF
module sockopt_bad_tos -t 1 "$bm" '[{ "name": "sockopt", "bindings": { "vip1": { "tos": "af44" } } }]' \
    '"bindings": { "vip1": { "address": "127.0.0.2" } }' <<EOF
modules[0].bindings.vip1.tos: must be a DSCP name (cs0-cs7, af11-af43, ef, le) or a number from 0 to 255, not "af44"
EOF
module sockopt_unknown_binding -t 1 "$bm" '[{ "name": "sockopt", "bindings": { "vip9": { "mark": 1 } } }]' \
    '"bindings": { "vip1": { "address": "127.0.0.2" } }' <<EOF
$VT_DIR/m/sockopt_unknown_binding.json: modules[0].bindings.vip9: no binding named "vip9" in the configuration (the bindings are: default, vip1)
EOF
module netacl_bad_cidr -t 1 "$bm" '[{ "name": "netacl", "options": { "rules": [{ "action": "deny", "cidr": "10.0.0.0/33" }] } }]' <<EOF
modules[0].options.rules[0].cidr: "10.0.0.0/33" is not a network: the prefix length must be a number from 0 to 32
EOF
module netacl_bad_actions -t 1 "$bm" '[{ "name": "netacl", "options": { "default": "maybe", "rules": [{ "action": "block", "cidr": "10.0.0.0/8" }] } }]' <<EOF
modules[0].options.default: must be "allow" or "deny", not "maybe"
modules[0].options.rules[0].action: must be "allow" or "deny", not "block"
EOF
module netacl_rule_not_object -t 1 "$bm" '[{ "name": "netacl", "options": { "rules": ["deny 10.0.0.0/8"] } }]' <<EOF
modules[0].options.rules[0]: must be an object with "action", "cidr" and an optional "comment", not a string
EOF

# controls: a disabled broken module is not even opened; the good one loads
module disabled_broken_module -t 0 "$tm" '[{ "name": "bad_magic", "enabled": false }, { "name": "good" }]' <<EOF
ok
EOF
module_cases=$((cases - mods_before))

vt_log "$configs configs, $module_cases module cases, $failures failure(s)"
[ "$failures" -eq 0 ] || vt_fail "$failures of $cases bad-input cases failed (above)"
echo "bad_inputs.sh: all $cases cases passed"
exit 0
