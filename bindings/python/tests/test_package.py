"""Packaging: library discovery and version check, the offline build backend, the public surface."""
from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import inspect
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zipfile
from pathlib import Path

import npipe
from npipe import _native

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # bindings/python


def load_backend():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("npipe_backend", ROOT / "backend" / "npipe_backend.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_python(code: str, env: dict, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NPIPE_LIBRARY", "PYTHONPATH")}
    env.update(extra)
    return env


class LibraryDiscoveryTest(unittest.TestCase):
    def test_version_and_path(self) -> None:
        self.assertEqual(npipe.library_version().split(".")[0], "1")
        self.assertEqual(_native.library().npipe_version() >> 16, 1)
        self.assertTrue(npipe.library_path())

    def test_wrong_major_version_is_refused_with_advice(self) -> None:
        with self.assertRaises(npipe.LibraryLoadError) as cm:
            _native._check_version(0x020100, "/x/libnpipe.so.2")
        self.assertIn("needs major version 1", str(cm.exception))
        self.assertIn("NPIPE_LIBRARY", str(cm.exception))
        _native._check_version(0x010203, "/x/libnpipe.so.1")  # any 1.x is fine

    def test_bad_npipe_library_says_what_to_do(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            r = run_python("import npipe; print(npipe.__version__); npipe.Poll()",
                           clean_env(NPIPE_LIBRARY="/nonexistent/libnpipe.so.1", PYTHONPATH=str(ROOT)), tmp)
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("1.1.0"), r.stdout)  # import works without the library
        self.assertIn("LibraryLoadError", r.stderr)
        self.assertIn("NPIPE_LIBRARY='/nonexistent/libnpipe.so.1'", r.stderr)

    def test_not_a_library(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            r = run_python("import npipe; npipe.Poll()", clean_env(NPIPE_LIBRARY=sys.executable, PYTHONPATH=str(ROOT)), tmp)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("LibraryLoadError", r.stderr)


class BackendTest(unittest.TestCase):
    def setUp(self) -> None:
        self.backend = load_backend()
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def check_record(self, wheel: Path) -> zipfile.ZipFile:
        zf = zipfile.ZipFile(wheel)
        self.addCleanup(zf.close)
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        rows = list(csv.reader(io.StringIO(zf.read(record).decode())))
        self.assertEqual({r[0] for r in rows}, set(zf.namelist()))
        for name, digest, size in rows:
            if name == record:
                continue
            data = zf.read(name)
            expect = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            self.assertEqual(digest, f"sha256={expect}", name)
            self.assertEqual(int(size), len(data), name)
        return zf

    def test_no_build_requirements(self) -> None:
        self.assertEqual(self.backend.get_requires_for_build_wheel(), [])
        self.assertEqual(self.backend.get_requires_for_build_sdist(), [])

    def test_pure_wheel(self) -> None:
        old = os.environ.pop("NPIPE_BUNDLE_LIBRARY", None)
        try:
            name = self.backend.build_wheel(self.tmp.name, {"bundle-library": "none"})
        finally:
            if old is not None:
                os.environ["NPIPE_BUNDLE_LIBRARY"] = old
        self.assertEqual(name, f"npipe-{npipe.__version__}-py3-none-any.whl")
        zf = self.check_record(Path(self.tmp.name) / name)
        names = set(zf.namelist())
        for f in ("__init__.py", "_native.py", "_errors.py", "_poll.py", "_pipe.py", "py.typed"):
            self.assertIn(f"npipe/{f}", names)
        self.assertFalse(any("__pycache__" in n or n.endswith(".so.1") for n in names))

    def test_wheel_with_bundled_library_is_found_without_npipe_library(self) -> None:
        lib = npipe.library_path()
        name = self.backend.build_wheel(self.tmp.name, {"bundle-library": lib})
        self.assertNotIn("none-any", name)
        wheel = Path(self.tmp.name) / name
        zf = self.check_record(wheel)
        site = Path(self.tmp.name) / "site"
        zf.extractall(site)  # what an installer does with a wheel
        code = ("import npipe, threading; print(npipe.__version__, npipe.library_path());"
                "s = npipe.Server('bundled-%d' % __import__('os').getpid());"
                "t = threading.Thread(target=lambda: s.connect(timeout=10) and s.sendall(b'hi', timeout=10)); t.start();"
                "c = npipe.open(s.name, timeout=10); print(c.recv(timeout=10)); t.join(10); c.close(); s.close()")
        r = run_python(code, clean_env(PYTHONPATH=str(site)), self.tmp.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        version, path = r.stdout.splitlines()[0].split(" ", 1)
        self.assertEqual(version, npipe.__version__)
        self.assertEqual(Path(path), site / "npipe" / "libnpipe.so.1")
        self.assertEqual(r.stdout.splitlines()[1], "b'hi'")

    def test_platform_tag_is_the_librarys(self) -> None:
        # A cross-built npipe.dll makes a win_amd64 wheel on Linux; an ELF library its own arch.
        tmp = Path(self.tmp.name)
        pe = bytearray(0x100)
        pe[:2] = b"MZ"
        pe[0x3C:0x40] = (0x80).to_bytes(4, "little")
        pe[0x80:0x86] = b"PE\0\0" + (0x8664).to_bytes(2, "little")
        (tmp / "npipe.dll").write_bytes(bytes(pe))
        self.assertEqual(self.backend._platform_tag(tmp / "npipe.dll"), "win_amd64")
        name = self.backend.build_wheel(str(tmp / "out"), {"bundle-library": str(tmp / "npipe.dll")})
        self.assertTrue(name.endswith("-py3-none-win_amd64.whl"), name)
        with zipfile.ZipFile(tmp / "out" / name) as zf:
            self.assertIn("npipe/npipe.dll", zf.namelist())
            self.assertIn("Root-Is-Purelib: false", zf.read(f"npipe-{npipe.__version__}.dist-info/WHEEL").decode())
        elf = bytearray(64)
        elf[:6] = b"\x7fELF\x02\x01"
        elf[18:20] = (62).to_bytes(2, "little")
        (tmp / "libnpipe.so.1").write_bytes(bytes(elf))
        self.assertEqual(self.backend._platform_tag(tmp / "libnpipe.so.1"), "linux_x86_64")

    def test_sdist(self) -> None:
        name = self.backend.build_sdist(self.tmp.name)
        with tarfile.open(Path(self.tmp.name) / name) as tf:
            names = set(tf.getnames())
        base = name[: -len(".tar.gz")]
        for f in ("pyproject.toml", "backend/npipe_backend.py", "npipe/__init__.py", "PKG-INFO"):
            self.assertIn(f"{base}/{f}", names)

    def test_versions_agree(self) -> None:
        text = (ROOT / "pyproject.toml").read_text()
        self.assertIn(f'version = "{npipe.__version__}"', text)


class PublicSurfaceTest(unittest.TestCase):
    def test_all_exported_and_documented(self) -> None:
        for name in npipe.__all__:
            obj = getattr(npipe, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                self.assertTrue(inspect.getdoc(obj), f"{name} has no docstring")
        for cls in (npipe.Poll, npipe.Pipe, npipe.Server, npipe.Client, npipe.Event, npipe.Listener, npipe.PipeIO):
            for attr, member in vars(cls).items():
                if attr.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                    continue
                self.assertTrue(inspect.getdoc(member), f"{cls.__name__}.{attr} has no docstring")
                if inspect.isfunction(member):
                    self.assertIn("return", member.__annotations__, f"{cls.__name__}.{attr} lacks type hints")

    def test_help_reads_like_a_manual(self) -> None:
        # help(npipe) documents npipe, not OSError, int or io.RawIOBase again for every class.
        import pydoc
        text = pydoc.render_doc(npipe, renderer=pydoc.plaintext)
        for noise in ("inherited from builtins.OSError", "inherited from builtins.int", "with_traceback",
                      "inherited from _io._RawIOBase", "inherited from NpipeError"):
            self.assertFalse(noise in text, f"help(npipe) shows {noise!r}")
        page = pydoc.render_doc(npipe.PipeTimeoutError, renderer=pydoc.plaintext)
        self.assertIn("NPIPE_ETIMEDOUT", page)
        self.assertLess(len(page.splitlines()), 40, page)
        self.assertIn("recv_into", text)
        self.assertIn("npipe.asyncio", text)
        e = npipe.PipeTimeoutError(-10, "m")  # instances keep everything OSError has
        self.assertEqual((e.errno, e.strerror), (__import__("errno").ETIMEDOUT, "m"))
        self.assertIn("with_traceback", dir(e))

    def test_every_c_function_is_declared(self) -> None:
        header = ROOT.parent.parent / "include" / "npipe.h"
        if not header.exists():
            self.skipTest("no source checkout")
        import re
        declared = set(re.findall(r"NPIPE_CALL (npipe_\w+)\(", header.read_text()))
        self.assertEqual(declared, set(_native._PROTOTYPES))

    def test_pipe_cannot_be_constructed_directly(self) -> None:
        with self.assertRaises(TypeError):
            npipe.Pipe()


if __name__ == "__main__":
    unittest.main()
