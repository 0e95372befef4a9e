"""What the benchmark scripts share: where the data is, how a result table is written, and a
detector seen without its points."""

from __future__ import annotations

import csv
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FACES = SHARED / "faces"
PHOTOS = SHARED / "photos"
RESULTS = ROOT / "bench" / "results"


def write_table(rows: list[dict], out: str | Path) -> None:
    """Rows as CSV at `out` and as a Markdown table on stdout."""
    fields = list(dict.fromkeys(k for r in rows for k in r))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)
    print("| " + " | ".join(fields) + " |")
    print("|" + "---|" * len(fields))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in fields) + " |")
    print(f"wrote {out}")


class BoxesOnly:
    """A detector's boxes without its points: the first crop from the box alone."""

    def __init__(self, detector) -> None:
        self.detector, self.name = detector, detector.name

    def __call__(self, image):
        return [replace(b, points=None) for b in self.detector(image)]


def kaggle_test_truth():
    """The Kaggle test faces (N, 96, 96, 1) and their keypoints (N, 15, 2) in pixels, NaN where
    unlabelled: people none of our models saw, every label (test_keypoints.csv)."""
    import pandas as pd

    from facekeypoints.data import load_test
    from facekeypoints.keypoints import COLUMNS

    _, X = load_test(FACES / "test.csv.gz")
    truth = pd.read_csv(FACES / "test_keypoints.csv")[list(COLUMNS)].to_numpy()
    return X, truth.reshape(len(truth), -1, 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: list[str], port: int, wait: float = 120) -> subprocess.Popen:
    """`facekeypoints serve ARGS` on 127.0.0.1:`port`, once it answers (the bench stops it)."""
    import httpx

    process = subprocess.Popen([sys.executable, "-m", "facekeypoints.cli", "serve", *args,
                                "--port", str(port)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start")
