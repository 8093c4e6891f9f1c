# corelink.sh: builds a bench program against a configured build's core library, linked exactly like the daemon.
# Sourced by hook_dispatch.sh and connect_path.sh after they set bench_dir and
# top (common.sh sets top). POSIX sh plus `local`.
#
#   corelink_find              sets BUILD (the build dir: $VIPMTA_BUILD, else two levels
#                              above $VIPMTA, else $top/_build) and checks it; dies when the
#                              core library is missing
#   corelink_describe          one line: build dir, CC, CFLAGS, sanitizers (on stderr too
#                              when they make the figures meaningless)
#   corelink_prog OUT SRC...   compiles SRC with the build's compiler and CFLAGS (forced to
#                              -O2 when the build had none) and links OUT against
#                              core/libvipmta_core.la with the daemon's export flags
#                              (core/plugin/vipmta.dynlist), through the build's libtool
#   corelink_module OUT SRC    a shared object like a module (-shared -fPIC, same CFLAGS)

# A make variable of the build's core/Makefile ("" when absent).
corelink_var() {
    sed -n "s/^$1 = //p" "$BUILD/core/Makefile" | head -1
}

corelink_find() {
    if [ -n "${VIPMTA_BUILD:-}" ]; then
        BUILD=$VIPMTA_BUILD
    elif [ -n "${VIPMTA:-}" ]; then      # common.sh defaults it to _build/core/vipmta
        BUILD=$(dirname "$(dirname "$VIPMTA")")
    else
        BUILD=$top/_build
    fi
    [ -f "$BUILD/core/libvipmta_core.la" ] && [ -x "$BUILD/libtool" ] ||
        bench_die "no built core at $BUILD (core/libvipmta_core.la and libtool): configure and make a build there, or set VIPMTA_BUILD=/path/to/build"
    BUILD=$(cd "$BUILD" && pwd)
    CORE_CC=$(corelink_var CC)
    CORE_CFLAGS=$(corelink_var CFLAGS)
    CORE_SAN=$(corelink_var SAN_CFLAGS)
    case " $CORE_CFLAGS " in
        *" -O"[1-3s]*|*" -Ofast "*) ;;
        *) bench_loud "the build at $BUILD has CFLAGS '$CORE_CFLAGS' (not optimised): figures mean little; use CFLAGS='-O2 -g'" ;;
    esac
    [ -n "$CORE_SAN" ] && bench_loud "the build at $BUILD has sanitizers on ($CORE_SAN): figures mean nothing; use a build without --enable-sanitizers"
    return 0
}

corelink_describe() {
    printf 'build %s: %s %s%s\n' "$BUILD" "$CORE_CC" "$CORE_CFLAGS" "${CORE_SAN:+ $CORE_SAN}"
}

# The daemon's link flags: export exactly the public ABI, forcing each symbol in
# (what configure puts into VIPMTA_EXPORT_LDFLAGS).
corelink_export_flags() {
    local dl=$top/core/plugin/vipmta.dynlist s flags
    flags="-Wl,--dynamic-list=$dl"
    for s in $(sed -n 's/^ *\([A-Za-z_][A-Za-z0-9_]*\);$/\1/p' "$dl"); do
        flags="$flags -Wl,--undefined=$s"
    done
    echo "$flags"
}

corelink_prog() {
    local out=$1 objs="" src obj
    shift
    for src in "$@"; do
        obj=${out}_$(basename "$src" .c).o
        # shellcheck disable=SC2086
        ${CORE_CC:-cc} -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -pthread $CORE_CFLAGS \
            -I"$top/core" -I"$top/core/include" $(corelink_var JANSSON_CFLAGS) \
            $(corelink_var LIBEVENT_CFLAGS) -c -o "$obj" "$src" || bench_die "cannot compile $src"
        objs="$objs $obj"
    done
    # shellcheck disable=SC2086
    "$BUILD/libtool" --quiet --tag=CC --mode=link ${CORE_CC:-cc} -pthread $CORE_CFLAGS \
        $(corelink_export_flags) -o "$out" $objs "$BUILD/core/libvipmta_core.la" -ldl ||
        bench_die "cannot link $out against $BUILD/core/libvipmta_core.la"
}

corelink_module() {
    # shellcheck disable=SC2086
    ${CORE_CC:-cc} -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -fPIC -shared $CORE_CFLAGS \
        -I"$top/core/include" -o "$1" "$2" || bench_die "cannot build $2"
}
