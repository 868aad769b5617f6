"""Runs this folder's unittest suite exactly like ``python -m unittest discover -s tests``, but
reports on stdout: Meson keeps a test's stderr apart, and the CI summary reads unittest's closing
"Ran N tests" / "OK" lines from stdout. Extra arguments go to unittest (e.g. ``-v``, ``-k name``)."""
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent


class StdoutRunner(unittest.TextTestRunner):
    def __init__(self, **kwargs: object) -> None:
        kwargs["stream"] = sys.stdout
        super().__init__(**kwargs)  # type: ignore[arg-type]


if __name__ == "__main__":
    unittest.main(module=None, testRunner=StdoutRunner,
                  argv=[sys.argv[0], "discover", "-s", str(HERE), "-t", str(HERE)] + sys.argv[1:])
