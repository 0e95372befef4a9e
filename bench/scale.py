"""Photos per second on Ray: single-process `detect` against `detect --engine ray` with 1 and 2
workers on this machine, and a two-node cluster (a head and a second `ray start` node, one CPU
each, on this machine), on ../shared/data/photos/youtube repeated to a few thousand inputs.

    python bench/scale.py                  # 489 photos x 6 = 2,934 inputs, 3 runs of each

Each row: the median photos per second once started (detect: its loop with the model loaded;
Ray: from the first part written to the last, the actors' start excluded) and over the whole
command (Ray started, actors loading their model, the merge), the time to the first part, and
each worker's peak resident memory. Keypoints only (--no-draw); the built-in model and
BlazeFace. Every run's keypoints.csv is checked equal to detect's.
Writes bench/results/scale.csv.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PHOTOS, RESULTS, write_table

import facekeypoints as fk
from facekeypoints.inference.loading import load
from facekeypoints.photos.local_job import run_detect
from facekeypoints.photos.pipeline import FacePipeline


def inputs(folder: Path, copies: int) -> Path:
    """The youtube photos `copies` times over, as links with names of their own."""
    photos = sorted((PHOTOS / "youtube").glob("*.jpg"))
    folder.mkdir()
    for copy in range(copies):
        for photo in photos:
            (folder / f"{copy}_{photo.name}").symlink_to(photo)
    return folder


def single(folder: Path, out: Path) -> dict:
    pipeline = FacePipeline(load(None, prefer_onnx=True), "blazeface")
    pipeline.photo(next(folder.iterdir()))  # sessions warmed, as a started worker's are
    begun = time.monotonic()
    summary = run_detect([str(folder)], pipeline, out, draw_pictures=False,
                         log=lambda line: None, progress=False)
    seconds = time.monotonic() - begun
    return {"files": summary["files"], "steady": summary["files"] / seconds,
            "whole": summary["files"] / seconds, "first_part_s": 0.0, "rss": []}


def on_ray(folder: Path, out: Path, workers: int, address: str | None = None) -> dict:
    begun = time.monotonic()
    summary = fk.detect_many([folder], out=out, workers=workers, address=address, draw=False,
                             progress=False, log=None)
    seconds = time.monotonic() - begun
    ray = summary["ray"]
    return {"files": summary["files"], "steady": ray["steady_files"] / ray["steady_s"],
            "whole": summary["files"] / seconds, "first_part_s": ray["first_part_s"],
            "rss": [w["peak_rss_mb"] for w in ray["workers"]],
            "nodes": len({w["node"] for w in ray["workers"]})}


class TwoNodes:
    """`ray start --head` and a second `ray start` node on this machine, one CPU each, token
    authentication on; stopped by process id (each in a session of its own)."""

    def __enter__(self) -> TwoNodes:
        import ray._private.services

        self.env = {**os.environ, "RAY_AUTH_MODE": "token",
                    "RAY_AUTH_TOKEN": secrets.token_hex(24)}
        ip, port = ray._private.services.get_node_ip_address(), 6500 + os.getpid() % 400
        start = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block",
                 "--num-cpus", "1", "--disable-usage-stats"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                 "start_new_session": True, "env": self.env}
        self.nodes = [subprocess.Popen([*start, "--head", f"--port={port}",
                                        "--include-dashboard=false"], **quiet)]
        time.sleep(6)
        self.nodes.append(subprocess.Popen([*start, f"--address={ip}:{port}"], **quiet))
        time.sleep(6)
        self.address = f"{ip}:{port}"
        return self

    def __exit__(self, *exc) -> None:
        for node in self.nodes:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait(timeout=30)
        time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--job", nargs=4, metavar=("FOLDER", "OUT", "WORKERS", "ADDRESS"),
                        help=argparse.SUPPRESS)  # one Ray run, in a process of its own
    args = parser.parse_args()
    if args.job:
        folder, out, workers, address = args.job
        print(json.dumps(on_ray(Path(folder), Path(out), int(workers), address or None)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = inputs(Path(tmp) / "in", args.copies)
        rows = [measure("detect, one process", lambda out: single(folder, out), Path(tmp),
                        args.runs)]
        for workers in (1, 2):
            rows.append(measure(f"ray, {workers} worker{'s' * (workers > 1)}",
                                lambda out, w=workers: job(folder, out, w), Path(tmp),
                                args.runs))
        with TwoNodes() as cluster:
            rows.append(measure("ray, two nodes (1 CPU each)",
                                lambda out: job(folder, out, 2, cluster.address, cluster.env),
                                Path(tmp), args.runs))
        reference = (Path(tmp) / rows[0]["out"] / "keypoints.csv").read_bytes()
        for row in rows:
            same = (Path(tmp) / row.pop("out") / "keypoints.csv").read_bytes() == reference
            assert same, f"{row['engine']}: keypoints.csv differs from detect's"
        for row in rows:
            row["vs_detect"] = round(row["photos_per_s"] / rows[0]["photos_per_s"], 2)
            row["vs_1_worker"] = round(row["photos_per_s"] / rows[1]["photos_per_s"], 2)
    write_table(rows, RESULTS / "scale.csv")


def job(folder: Path, out: Path, workers: int, address: str = "",
        env: dict | None = None) -> dict:
    """A Ray run as a user's would be: its own process (its own Ray, or joining a cluster)."""
    done = subprocess.run([sys.executable, __file__, "--job", str(folder), str(out),
                           str(workers), address], capture_output=True, text=True, timeout=900,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def measure(name: str, run, tmp: Path, runs: int) -> dict:
    results = []
    for i in range(runs):
        out = tmp / f"{name.replace(' ', '_').replace(',', '')}_{i}"
        results.append(run(out) | {"out": out.name})
        print(name, {k: v for k, v in results[-1].items() if k != "out"}, flush=True)
    med = lambda key: statistics.median(r[key] for r in results)  # noqa: E731
    return {"engine": name, "files": results[0]["files"],
            "photos_per_s": round(med("steady"), 1), "whole_command_per_s": round(med("whole"), 1),
            "first_part_s": round(med("first_part_s"), 2),
            "worker_peak_rss_mb": " ".join(f"{x:.0f}" for x in results[-1]["rss"]),
            "runs": " ".join(f"{r['steady']:.1f}" for r in results), "out": results[-1]["out"]}


if __name__ == "__main__":
    main()
