#!/usr/bin/env python3
"""The pid of the wineserver that serves a Wine prefix, found without asking Wine (which would start
one): the server's working directory is named after the prefix's device and inode
(server-<dev hex>-<inode hex>). Prints the pid, or nothing when no server runs or the prefix does
not exist yet. scripts/wine-run.sh and tools/tests/test_tool.py both tell with it whether the
wineserver died under a failing test.
Usage: wineserver_pid.py [PREFIX]   (default: $WINEPREFIX)"""
import os
import sys


def wineserver_pid(prefix):
    """The pid of the wineserver of `prefix`, or None."""
    if not prefix or not os.path.isdir(prefix):
        return None  # no prefix, or the first Wine program is still creating it
    st = os.stat(prefix)
    suffix = "/server-%x-%x" % (st.st_dev, st.st_ino)
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and os.readlink("/proc/%s/cwd" % pid).endswith(suffix):
                return int(pid)
        except OSError:
            pass  # gone meanwhile, or not ours to look at
    return None


if __name__ == "__main__":
    found = wineserver_pid(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("WINEPREFIX"))
    if found is not None:
        print(found)
