"""The install route of the README: pip builds a platform wheel carrying the library, pip installs
it into a fresh venv, and the README's example runs there with nothing else set up."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

import npipe

ROOT = Path(__file__).resolve().parent.parent  # bindings/python


def run(args: list, env: dict, cwd: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


class WheelInVenvTest(unittest.TestCase):
    def test_pip_wheel_then_install_into_a_fresh_venv_runs_the_readme_example(self) -> None:
        if sys.platform != "linux":
            self.skipTest("builds a linux wheel")
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        out = Path(tmp.name)
        # Nothing of the test's environment may leak into the venv: no NPIPE_LIBRARY, no PYTHONPATH.
        env = {k: v for k, v in os.environ.items() if k not in ("NPIPE_LIBRARY", "PYTHONPATH", "TMPDIR",
                                                                 "PIP_REQUIRE_VIRTUALENV", "VIRTUAL_ENV")}
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        env["NPIPE_BUNDLE_LIBRARY"] = npipe.library_path()  # the library under test, whichever build
        r = run([sys.executable, "-m", "pip", "wheel", "--no-index", "--no-deps", "-w", str(out / "dist"),
                 str(ROOT)], env, tmp.name)
        if r.returncode != 0 and "No module named pip" in r.stderr:
            self.skipTest("this python3 has no pip")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        wheels = list((out / "dist").glob("npipe-*.whl"))
        self.assertEqual(len(wheels), 1, wheels)
        self.assertRegex(wheels[0].name, r"^npipe-[\d.]+-py3-none-linux_\w+\.whl$")  # a platform wheel
        with zipfile.ZipFile(wheels[0]) as zf:
            self.assertIn("npipe/libnpipe.so.1", zf.namelist())
            self.assertIn("npipe/asyncio.py", zf.namelist())
        del env["NPIPE_BUNDLE_LIBRARY"]

        venv = out / "venv"
        r = run([sys.executable, "-m", "venv", str(venv)], env, tmp.name)
        if r.returncode != 0:
            self.skipTest(f"python3 -m venv does not work here (install python3-venv): {r.stderr.strip()[-200:]}")
        python = str(venv / "bin" / "python")
        r = run([python, "-m", "pip", "install", "--no-index", str(wheels[0])], env, tmp.name)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # The README's example, from a directory outside the checkout.
        example = out / "echo.py"
        shutil.copy(ROOT / "examples" / "echo.py", example)
        r = run([python, str(example)], env, tmp.name, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        shown = re.search(r"```text\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
        assert shown
        self.assertEqual(r.stdout, shown.group(1))
        r = run([python, "-c", "import npipe; print(npipe.library_path())"], env, tmp.name, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.strip().startswith(str(venv)), r.stdout)  # the copy the wheel carried


if __name__ == "__main__":
    unittest.main()
