#!/bin/sh
# cli.sh: the vipmta command line against the real binary: -V, -h, -t (ok and errors), -M.
set -u
: "${VIPMTA_TOP_BUILDDIR:?}" "${VIPMTA_TOP_SRCDIR:?}"
vipmta="$VIPMTA_TOP_BUILDDIR/core/vipmta"
work="$VIPMTA_TOP_BUILDDIR/t/tmp/cli"
rm -rf "$work" && mkdir -p "$work"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_contains() { # WHAT HAYSTACK NEEDLE
    case "$2" in *"$3"*) ;; *) fail "$1: expected to contain [$3], got [$2]" ;; esac
}

out=$("$vipmta" -V) || fail "-V exit status"
expect_contains "-V" "$out" "vipmta "
expect_contains "-V" "$out" "(module ABI 2.0)"

out=$("$vipmta" -h) || fail "-h exit status"
for flag in "-c FILE" "-f" "-t" "-M" "-V" "-h"; do expect_contains "-h" "$out" "$flag"; done

"$vipmta" -Z >/dev/null 2>&1 && fail "unknown option accepted"

# a good config enabling the example module from the build tree
cat >"$work/good.json" <<JSON
{
  "spool_dir": "spool",
  "module_path": ["$VIPMTA_TOP_BUILDDIR/modules"],
  "bindings": { "vip1": { "address": "127.0.0.2" } },
  "modules": [ { "name": "example", "enabled": true, "options": { "veto": false } } ]
}
JSON
out=$("$vipmta" -t -c "$work/good.json" 2>&1) || fail "-t on a good config exited non-zero: $out"
[ "$out" = "ok" ] || fail "-t on a good config: expected [ok], got [$out]"

out=$("$vipmta" -M -c "$work/good.json" 2>&1) || fail "-M exited non-zero: $out"
expect_contains "-M" "$out" "example"
expect_contains "-M" "$out" "core_connection_post_bind"

# the shipped sample config checks ok with the example module
out=$(cd "$work" && sed "s#\"modules\": \[#\"module_path\": [\"$VIPMTA_TOP_BUILDDIR/modules\"], \"modules\": [#" \
    "$VIPMTA_TOP_SRCDIR/conf/vipmta.json" >sample.json && "$vipmta" -t -c sample.json 2>&1) ||
    fail "-t on conf/vipmta.json: $out"

# parse error: FILE:LINE:COLUMN
printf '{\n  "hostname": "x",\n  "listen": [ }\n' >"$work/broken.json"
out=$("$vipmta" -t -c "$work/broken.json" 2>&1) && fail "-t accepted a broken file"
expect_contains "-t parse error" "$out" "$work/broken.json:3:"

# several schema errors are all reported, and a missing module names its search path
cat >"$work/bad.json" <<JSON
{
  "hostnme": "x",
  "listen": [ { "address": "127.0.0.1", "port": "25" } ],
  "module_path": ["$work/nowhere"],
  "modules": [ { "name": "nosuchmodule", "enabled": true } ]
}
JSON
out=$("$vipmta" -t -c "$work/bad.json" 2>&1) && fail "-t accepted a bad config"
expect_contains "-t unknown key" "$out" "unknown key \"hostnme\""
expect_contains "-t wrong type" "$out" "listen[0].port"

cat >"$work/nomod.json" <<JSON
{ "module_path": ["$work/nowhere"], "modules": [ { "name": "nosuchmodule" } ] }
JSON
out=$("$vipmta" -t -c "$work/nomod.json" 2>&1) && fail "-t accepted a missing module"
expect_contains "-t missing module" "$out" "nosuchmodule"
expect_contains "-t missing module" "$out" "$work/nowhere"

out=$("$vipmta" -t -c "$work/does-not-exist.json" 2>&1) && fail "-t accepted a missing file"
expect_contains "-t missing file" "$out" "does-not-exist.json"

# valid but doubtful: an open relay is said by -t, which still passes
cat >"$work/openrelay.json" <<JSON
{ "relay_from": ["0.0.0.0/0", "10.0.0.0/8"] }
JSON
out=$("$vipmta" -t -c "$work/openrelay.json" 2>&1) || fail "-t refused an open relay config: $out"
expect_contains "-t open relay warning" "$out" "warning: relay_from[0]: 0.0.0.0/0 lets every client on the internet relay mail through vipmta to any domain (an open relay"
expect_contains "-t still passes" "$out" "ok"
case $out in *"relay_from[1]"*) fail "-t warned about 10.0.0.0/8: $out" ;; esac

# a directory given for the file: named as such
mkdir -p "$work/confdir"
out=$("$vipmta" -t -c "$work/confdir" 2>&1) && fail "-t accepted a directory"
expect_contains "-t directory" "$out" "$work/confdir: is a directory, not a configuration file (give the JSON file itself, e.g. vipmta.json in it)"

# vipmtactl: a missing or wrong -c file says what is wrong, not "FILE:-1:-1:"
vipmtactl=$VIPMTA_TOP_BUILDDIR/core/vipmtactl
out=$("$vipmtactl" -c "$work/missing.json" status 2>&1) && fail "vipmtactl accepted a missing file"
expect_contains "vipmtactl missing file" "$out" "$work/missing.json: cannot read the configuration: No such file or directory"
case $out in *":-1:-1:"*) fail "vipmtactl printed a -1 position: $out" ;; esac
out=$("$vipmtactl" -c "$work/confdir" status 2>&1) && fail "vipmtactl accepted a directory"
expect_contains "vipmtactl directory" "$out" "$work/confdir: is a directory, not the configuration file"

if [ "$failures" -ne 0 ]; then
    echo "cli.sh: $failures failure(s)"
    exit 1
fi
echo "cli.sh: all checks passed"
