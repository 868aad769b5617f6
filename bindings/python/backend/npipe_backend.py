"""A minimal, stdlib-only PEP 517 / PEP 660 build backend for the npipe package.

Why not setuptools: pip's isolated builds would download it, and the machines this ships to may
be offline. This backend needs nothing beyond the standard library.

It builds a wheel of the ``npipe`` package. The shared library goes into the package directory
(``npipe/libnpipe.so.1`` / ``npipe/npipe.dll``) and the wheel is tagged for the library's
platform (``linux_x86_64``, ``win_amd64``, ...), taken from ``-C bundle-library=PATH``, else
``NPIPE_BUNDLE_LIBRARY``, else ``[tool.npipe] bundle-library`` (``auto``: the source checkout's
``build/native`` library when it has been built). ``none`` makes a pure ``py3-none-any`` wheel
that finds the library at run time.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import sys
import sysconfig
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "npipe"


# --------------------------------------------------------------------------------------------
# pyproject.toml (tomllib on 3.11+, a tiny reader of the flat tables we use otherwise)
# --------------------------------------------------------------------------------------------
def _pyproject() -> Dict[str, Dict[str, object]]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib  # type: ignore[import-not-found]

        return tomllib.loads(text)  # type: ignore[no-any-return]
    except ImportError:
        pass
    data: Dict[str, Dict[str, object]] = {}
    table: Dict[str, object] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^\[([\w.\-]+)\]$", line)
        if m:
            node = data
            for part in m.group(1).split("."):
                node = node.setdefault(part, {})  # type: ignore[assignment]
            table = node  # type: ignore[assignment]
            continue
        m = re.match(r'^([\w\-]+)\s*=\s*"(.*)"$', line)
        if m:
            table[m.group(1)] = m.group(2)
            continue
        m = re.match(r'^([\w\-]+)\s*=\s*\{\s*text\s*=\s*"(.*)"\s*\}$', line)
        if m:
            table[m.group(1)] = {"text": m.group(2)}
    return data


def _project() -> Dict[str, object]:
    project = dict(_pyproject().get("project", {}))
    init = (ROOT / PACKAGE / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__ = "([^"]+)"', init, re.M)
    if not m or m.group(1) != project.get("version"):
        raise RuntimeError(f"npipe/__init__.py __version__ ({m and m.group(1)}) differs from pyproject.toml "
                           f"version ({project.get('version')}): make them equal")
    return project


def _metadata() -> str:
    p = _project()
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {p['name']}",
        f"Version: {p['version']}",
        f"Summary: {p.get('description', '')}",
        f"Requires-Python: {p.get('requires-python', '>=3.8')}",
    ]
    lic = p.get("license")
    if isinstance(lic, dict) and lic.get("text"):
        lines.append(f"License: {lic['text']}")
    readme = ROOT / str(p.get("readme", "README.md"))
    body = ""
    if readme.is_file():
        lines.append("Description-Content-Type: text/markdown")
        body = "\n" + readme.read_text(encoding="utf-8")
    return "\n".join(lines) + "\n" + body


def _dist_info() -> str:
    p = _project()
    return f"{p['name']}-{p['version']}.dist-info"


# --------------------------------------------------------------------------------------------
# Which files, and which library
# --------------------------------------------------------------------------------------------
def _package_files() -> List[Path]:
    files = []
    for path in sorted((ROOT / PACKAGE).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".so", ".dll", ".dylib") \
                and ".so." not in path.name:
            files.append(path)
    return files


def _checkout_library() -> Optional[Path]:
    """The library of the source checkout this package sits in (``build/native`` on Linux,
    ``build/win`` on Windows), if it has been built."""
    repo = ROOT.parent.parent
    if not (repo / "include" / "npipe.h").is_file():
        return None
    names = ["npipe.dll"] if sys.platform == "win32" else ["libnpipe.so.1", "libnpipe.1.dylib"]
    sub = "win" if sys.platform == "win32" else "native"
    for name in names:
        if (repo / "build" / sub / name).is_file():
            return repo / "build" / sub / name
    return None


def _bundled_library(config_settings: Optional[Dict[str, object]]) -> Optional[Path]:
    """The library to ship inside the wheel: ``-C bundle-library=...``, else
    ``$NPIPE_BUNDLE_LIBRARY``, else ``[tool.npipe] bundle-library``. A path, ``auto`` (the
    checkout's built library if there is one) or ``none`` / empty (a pure wheel)."""
    value = None
    if config_settings:
        value = config_settings.get("bundle-library") or config_settings.get("bundle_library")
    if not value:
        value = os.environ.get("NPIPE_BUNDLE_LIBRARY")
    if not value:
        value = _pyproject().get("tool", {}).get("npipe", {}).get("bundle-library")  # type: ignore[union-attr]
    if not value or str(value).lower() == "none":
        return None
    if str(value).lower() == "auto":
        return _checkout_library()
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise RuntimeError(f"bundle-library / NPIPE_BUNDLE_LIBRARY names {path}, which is not a file")
    return path.resolve()


def _library_name(lib: Path) -> str:
    if lib.suffix == ".dll":
        return "npipe.dll"
    if lib.suffix == ".dylib":
        return "libnpipe.1.dylib"
    return "libnpipe.so.1"  # what the loader looks for first, whatever the build called it


_ELF_MACHINES = {3: "i686", 40: "armv7l", 62: "x86_64", 183: "aarch64"}
_PE_MACHINES = {0x14C: "win32", 0x8664: "win_amd64", 0xAA64: "win_arm64"}


def _platform_tag(lib: Optional[Path] = None) -> str:
    """The wheel's platform tag: the library's own (an ELF's machine gives ``linux_<arch>``, a
    PE's ``win_amd64`` / ``win32`` / ``win_arm64``, so a cross-built npipe.dll makes a Windows
    wheel on Linux), else this interpreter's platform."""
    if lib is not None:
        with open(lib, "rb") as f:
            head = f.read(4096)
        if head[:4] == b"\x7fELF" and len(head) >= 20:
            machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
            if machine in _ELF_MACHINES:
                return f"linux_{_ELF_MACHINES[machine]}"
        if head[:2] == b"MZ" and len(head) >= 0x40:
            pe = int.from_bytes(head[0x3C:0x40], "little")
            if head[pe:pe + 4] == b"PE\0\0" and pe + 6 <= len(head):
                machine = int.from_bytes(head[pe + 4:pe + 6], "little")
                if machine in _PE_MACHINES:
                    return _PE_MACHINES[machine]
    return re.sub(r"[^\w]", "_", sysconfig.get_platform())


# --------------------------------------------------------------------------------------------
# Wheel writing
# --------------------------------------------------------------------------------------------
def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(wheel_directory: str, entries: List[Tuple[str, bytes, int]], tag: str, purelib: bool) -> str:
    p = _project()
    dist_info = _dist_info()
    name = f"{p['name']}-{p['version']}-{tag}.whl"
    wheel_meta = (f"Wheel-Version: 1.0\nGenerator: npipe_backend\nRoot-Is-Purelib: {'true' if purelib else 'false'}\n"
                  f"Tag: {tag}\n")
    entries = entries + [
        (f"{dist_info}/METADATA", _metadata().encode("utf-8"), 0o644),
        (f"{dist_info}/WHEEL", wheel_meta.encode("utf-8"), 0o644),
        (f"{dist_info}/top_level.txt", f"{PACKAGE}\n".encode("utf-8"), 0o644),
    ]
    record = [_record_line(n, d) for n, d, _ in entries] + [f"{dist_info}/RECORD,,"]
    entries.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode("utf-8"), 0o644))
    os.makedirs(wheel_directory, exist_ok=True)
    stamp = time.localtime(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")))[:6]
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, data, mode in entries:
            info = zipfile.ZipInfo(arcname, date_time=stamp)  # type: ignore[arg-type]
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return name


# --------------------------------------------------------------------------------------------
# PEP 517 hooks
# --------------------------------------------------------------------------------------------
def get_requires_for_build_wheel(config_settings: Optional[Dict[str, object]] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[Dict[str, object]] = None) -> List[str]:
    return []


def get_requires_for_build_editable(config_settings: Optional[Dict[str, object]] = None) -> List[str]:
    return []


def _prepare_metadata(metadata_directory: str) -> str:
    dist_info = _dist_info()
    target = Path(metadata_directory) / dist_info
    target.mkdir(parents=True, exist_ok=True)
    (target / "METADATA").write_text(_metadata(), encoding="utf-8")
    return dist_info


def prepare_metadata_for_build_wheel(metadata_directory: str,
                                     config_settings: Optional[Dict[str, object]] = None) -> str:
    return _prepare_metadata(metadata_directory)


def prepare_metadata_for_build_editable(metadata_directory: str,
                                        config_settings: Optional[Dict[str, object]] = None) -> str:
    return _prepare_metadata(metadata_directory)


def build_wheel(wheel_directory: str, config_settings: Optional[Dict[str, object]] = None,
                metadata_directory: Optional[str] = None) -> str:
    entries = [(path.relative_to(ROOT).as_posix(), path.read_bytes(), 0o644) for path in _package_files()]
    lib = _bundled_library(config_settings)
    if lib is None:
        return _write_wheel(wheel_directory, entries, "py3-none-any", purelib=True)
    entries.append((f"{PACKAGE}/{_library_name(lib)}", lib.read_bytes(), 0o755))
    return _write_wheel(wheel_directory, entries, f"py3-none-{_platform_tag(lib)}", purelib=False)


def build_editable(wheel_directory: str, config_settings: Optional[Dict[str, object]] = None,
                   metadata_directory: Optional[str] = None) -> str:
    # A .pth file puts this source directory on sys.path: edits take effect at once, and the
    # package finds the checkout's build/native library by itself.
    pth = (str(ROOT) + "\n").encode("utf-8")
    return _write_wheel(wheel_directory, [(f"__editable__.{PACKAGE}.pth", pth, 0o644)], "py3-none-any", purelib=True)


def build_sdist(sdist_directory: str, config_settings: Optional[Dict[str, object]] = None) -> str:
    p = _project()
    base = f"{p['name']}-{p['version']}"
    files = [ROOT / "pyproject.toml", ROOT / "README.md", ROOT / "backend" / "npipe_backend.py"]
    files += _package_files()
    files += sorted(f for f in (ROOT / "tests").glob("*.py") if f.is_file())
    os.makedirs(sdist_directory, exist_ok=True)
    name = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as tf:
        def add(arcname: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{base}/{arcname}")
            info.size, info.mode, info.mtime = len(data), 0o644, 315532800
            tf.addfile(info, io.BytesIO(data))
        for path in files:
            if path.is_file():
                add(path.relative_to(ROOT).as_posix(), path.read_bytes())
        add("PKG-INFO", _metadata().encode("utf-8"))
    return name


if __name__ == "__main__":  # python backend/npipe_backend.py [wheel-dir]: build a wheel by hand
    print(build_wheel(sys.argv[1] if len(sys.argv) > 1 else "dist"))
