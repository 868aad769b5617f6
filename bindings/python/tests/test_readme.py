"""The README's example is examples/echo.py verbatim, and prints what the README shows."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ReadmeTest(unittest.TestCase):
    def test_example_matches_readme_and_its_output(self) -> None:
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        example = (ROOT / "examples" / "echo.py").read_text(encoding="utf-8")
        code = re.search(r"```python\n(.*?)```", readme, re.S)
        shown = re.search(r"```text\n(.*?)```", readme, re.S)
        assert code and shown
        # the file's docstring is the only difference
        self.assertEqual(code.group(1).strip(), example.split('"""', 2)[2].strip())
        env = dict(os.environ)
        env.pop("TMPDIR", None)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        r = subprocess.run([sys.executable, str(ROOT / "examples" / "echo.py")], env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, shown.group(1))


if __name__ == "__main__":
    unittest.main()
