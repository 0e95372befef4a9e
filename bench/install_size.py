"""The base install against MediaPipe's: installed size and install time, each into a fresh
virtual environment, from PyPI with pip's cache off (downloads included), alternating.

    python bench/install_size.py                        # this tree's wheel, and mediapipe==0.10.21
    python bench/install_size.py --repeats 2 --other mediapipe==0.10.21

Size: the venv's bytes on disk after the install, less an empty venv's (pip and setuptools);
time: the wall-clock seconds of `pip install`. Both depend on the network and the machine (a
shared 2-core one here: its load varies). Writes bench/results/install_size.csv.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, write_table

ROOT = Path(__file__).resolve().parents[1]


def du(folder: Path) -> int:
    """Bytes on disk under `folder` (files counted once, links not followed)."""
    total = 0
    for top, _, names in os.walk(folder):
        for name in names:
            path = Path(top) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def install(requirement: str, work: Path) -> tuple[float, int]:
    """Seconds to `pip install` `requirement` into a new venv, and the bytes it added."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    empty = du(venv)
    start = time.perf_counter()
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-cache-dir",
                    "--disable-pip-version-check", requirement], check=True)
    seconds = time.perf_counter() - start
    return seconds, du(venv) - empty


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", default="mediapipe==0.10.21")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="install-size-") as tmp:
        dist = Path(tmp) / "dist"
        subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist),
                        str(ROOT)], check=True, capture_output=True)
        wheel = str(next(dist.glob("*.whl")))
        names = {"facekeypoints (base)": wheel, args.other: args.other}
        found: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
        for i in range(args.repeats):
            for name, requirement in names.items():
                with tempfile.TemporaryDirectory(prefix="venv-", dir=tmp) as work:
                    found[name].append(install(requirement, Path(work)))
                seconds, size = found[name][-1]
                print(f"{name} #{i + 1}: {size / 2**20:,.0f} MB in {seconds:.1f} s", flush=True)
    rows = [{"install": name, "size_mb": round(statistics.median(s for _, s in runs) / 2**20),
             "seconds": round(statistics.median(t for t, _ in runs), 1), "runs": len(runs)}
            for name, runs in found.items()]
    write_table(rows, RESULTS / "install_size.csv")


if __name__ == "__main__":
    main()
