# Sourced by the other scripts: the build directories and how to (re)configure them.
# native: the Linux build; asan: the same under AddressSanitizer + UBSan; win: the mingw-w64
# cross build whose tests run under Wine.
NPIPE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_ROOT="${NPIPE_BUILD_ROOT:-$NPIPE_ROOT/build}"

configure() {  # configure NAME [meson options...]
    local dir="$BUILD_ROOT/$1"
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$NPIPE_ROOT" "$@" >/dev/null
    else
        meson setup "$dir" "$NPIPE_ROOT" "$@" >/dev/null
    fi
}

configure_native() { configure native; }
configure_asan() { configure asan -Db_sanitize=address,undefined -Db_lundef=false -Dtool=false; }
configure_win() { configure win --cross-file "$NPIPE_ROOT/cross/mingw-w64-x86_64.ini"; }
configure_tsan() { configure tsan -Db_sanitize=thread -Db_lundef=false -Dtool=false; }
