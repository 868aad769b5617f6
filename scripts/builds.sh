# Sourced by the other scripts: the build directories and how to (re)configure them.
# native: the Linux build; asan: the same under AddressSanitizer + UBSan; win: the mingw-w64
# cross build whose tests run under Wine.
NPIPE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_ROOT="${NPIPE_BUILD_ROOT:-$NPIPE_ROOT/build}"
# One Wine prefix for everything these scripts start: the test executables (through the cross
# file's wrapper), the tool and .NET tests and the persistent wineserver of scripts/test.sh must
# all talk to the same server, so the prefix is exported rather than defaulted in each place.
export WINEPREFIX="${WINEPREFIX:-$HOME/.wine-npipe}"
# The cross file's wrapper runs each Windows test through scripts/wine-run.sh when this is set:
# a test whose wineserver died under it runs once more, whether it passed or failed.
export NPIPE_WINE_RUN="$NPIPE_ROOT/scripts/wine-run.sh"

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
# The suites that run threads against the library, which is what ThreadSanitizer is for.
TSAN_SUITES=(basics poll lifecycle stress tokio soak open listener)
# The libFuzzer build: clang, ASan + UBSan (UB aborts, so the fuzzer stops on it); only the fuzz
# target, which holds the library's sources.
configure_fuzz() {
    CC=clang-14 CXX=clang++-14 configure fuzz -Db_sanitize=address,undefined -Db_lundef=false \
        -Dtests=false -Dtool=false -Dfuzz=true -Dcpp_args=-fno-sanitize-recover=all
}

# wineserver exits about 3 s after its last client, and a Wine program started during that
# shutdown fails at once ("wine client error:0: recvmsg: Connection reset by peer"). A persistent
# server (-p) for the whole batch of Wine runs removes that window.
wineserver_start() {
    # Its output goes nowhere: a server holding the caller's stdout open would keep a reader of
    # that pipe waiting until the server exits.
    if ! WINEDEBUG=-all wineserver -p >/dev/null 2>&1; then
        # A server of this prefix is still running (a Wine program that just ended, or a run that
        # was killed): let it exit, or end it, and start a persistent one in its place.
        timeout 10 wineserver -w >/dev/null 2>&1 || wineserver_stop
        WINEDEBUG=-all wineserver -p >/dev/null 2>&1 || { echo "wineserver -p failed"; return 1; }
    fi
    wineserver_wait_up
}

wineserver_wait_up() {  # the server is up once a trivial Wine program runs through it
    local try
    for try in 1 2 3 4 5 6 7 8 9 10; do
        if WINEDEBUG=-all timeout 60 "${WINE:-wine}" cmd /c exit 0 </dev/null >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    echo "wineserver: no Wine program ran after 10 tries"
    return 1
}

wineserver_stop() {  # ends the server of $WINEPREFIX and waits (bounded) until it is gone
    WINEDEBUG=-all wineserver -k >/dev/null 2>&1 || true
    timeout 20 wineserver -w >/dev/null 2>&1 || true
}
