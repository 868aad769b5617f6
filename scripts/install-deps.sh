#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test npipe, and creates the Wine
# prefix once (its first start takes seconds; it must not happen inside a timed test).
# Idempotent: does nothing when everything is there.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have meson || need+=(meson)
have ninja || need+=(ninja-build)
have g++ || need+=(g++)
have python3 || need+=(python3)
# The Python binding's wheel test builds a wheel with pip and installs it into a fresh venv; Debian's
# own python3 needs its pip and venv (ensurepip) packages for that (a pyenv python has both).
if [ "$(command -v python3 || true)" = /usr/bin/python3 ]; then
    python3 -c 'import pip' 2>/dev/null || need+=(python3-pip)
    python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
fi
have pkg-config || need+=(pkgconf)
[ -f /usr/include/doctest/doctest.h ] || need+=(doctest-dev)
have x86_64-w64-mingw32-g++-posix || need+=(g++-mingw-w64-x86-64-posix)
have x86_64-w64-mingw32-objdump || need+=(binutils-mingw-w64-x86-64)
have wine || need+=(wine)
have clang-format || need+=(clang-format)
[ -x /usr/lib/wine/wine64 ] || need+=(wine64)
# The fuzz build: clang and its runtime libraries (libFuzzer, the sanitizers).
have clang++-14 || need+=(clang-14)
compgen -G "/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null || need+=(libclang-rt-14-dev)

if [ ${#need[@]} -gt 0 ]; then
    echo "install-deps: installing ${need[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

export WINEPREFIX="${WINEPREFIX:-$HOME/.wine-npipe}"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    echo "install-deps: creating the Wine prefix $WINEPREFIX"
    WINEDEBUG=-all wineboot -i >/dev/null 2>&1 || true
    WINEDEBUG=-all wineserver -w || true
fi
