"""A worker's share of a batch job and the merge at its end. A worker runs `detect`'s own code
on each input of a task and writes the task's results as one Parquet part, whole or not at all;
the merge puts every part's inputs back in the manifest's order and writes keypoints.json and
keypoints.csv byte for byte as `detect` does, after checking each input is there exactly once."""

from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from ..errors import UserError
from ..onnx_runtime import THREADS
from ..photos.detect import detect_file, face_count, keypoints_files, summarise
from ..photos.pipeline import FacePipeline
from .manifest import Manifest, ModelSpec, part_name
from .store import Store, filesystem, is_url


class PartWorker:
    """Loads the model once, then each call runs one task: its inputs through `detect_file`,
    pictures and videos drawn into the output, the part written last."""

    def __init__(self, spec: ModelSpec, settings: dict, out: str | Store, threads: int = 1):
        os.environ[THREADS] = str(threads)  # before the first session starts its threads
        import cv2

        cv2.setNumThreads(threads)
        self.pipeline = FacePipeline(spec.load(), settings["detector"], fast=settings["fast"])
        self.settings = settings
        self.store = out if isinstance(out, Store) else Store(out)

    def __call__(self, task: int, inputs: list[tuple[int, str]], node: str = "") -> dict:
        import pyarrow as pa
        import pyarrow.parquet as pq

        start = time.perf_counter()
        indices, records, rows = [], [], []
        with tempfile.TemporaryDirectory(prefix="facekeypoints-part-") as tmp:
            staging = Path(tmp) / "out"  # drawn outputs on their way to object storage
            out = self.store.local or staging
            out.mkdir(parents=True, exist_ok=True)
            for index, file in inputs:
                path = _download(file, Path(tmp)) if is_url(file) else Path(file)
                record, found = detect_file(path, self.pipeline, out, self.settings["draw"],
                                            lambda line: None, False, self.settings["smooth"],
                                            name=file)
                indices.append(index)
                records.append(record)
                rows.append(found)
                if is_url(file):
                    path.unlink(missing_ok=True)
            if self.store.local is None and staging.is_dir():
                self.store.upload(staging)
        table = pa.table({"index": indices, "record": [json.dumps(r) for r in records],
                          "rows": [json.dumps(r) for r in rows], "node": [node] * len(indices),
                          "pid": [os.getpid()] * len(indices)})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self.store.write_bytes(part_name(task), sink.getvalue().to_pybytes())
        return {"task": task, "files": len(indices), "faces": sum(map(face_count, records)),
                "errors": json.dumps([r["error"] for r in records if "error" in r]),
                "unreadable": sum("error" in r for r in records), "node": node,
                "pid": os.getpid(), "seconds": time.perf_counter() - start,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _download(url: str, folder: Path) -> Path:
    """A local copy under its own name (absent where it cannot be read: `detect` says so)."""
    fs, path = filesystem(url)
    local = folder / path.rsplit("/", 1)[-1]
    try:
        with fs.open_input_stream(path) as source, open(local, "wb") as target:
            shutil.copyfileobj(source, target)
    except OSError:
        local.unlink(missing_ok=True)
    return local


def done_tasks(store: Store) -> set[int]:
    return {int(name[5:-8]) for name in store.files("parts")
            if name.startswith("part-") and name.endswith(".parquet")}


def merge(store: Store, manifest: Manifest, columns: list[str]) -> dict:
    """keypoints.json and keypoints.csv from the parts; the summary `detect` gives."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    found: dict[int, tuple[str, str]] = {}
    for task in sorted(done_tasks(store)):
        table = pq.read_table(pa.BufferReader(store.read_bytes(part_name(task))))
        for index, record, rows in zip(*(table[c].to_pylist() for c in ("index", "record",
                                                                         "rows")), strict=True):
            if index in found or not 0 <= index < len(manifest.inputs):
                raise UserError(f"{store.location}: {part_name(task)} repeats or does not know "
                                f"input {index}; the parts do not match parts/manifest.json")
            found[index] = (record, rows)
    missing = [e["file"] for i, e in enumerate(manifest.inputs) if i not in found]
    if missing:
        raise UserError(f"{store.location}: {len(missing)} input(s) have no results yet (the "
                        f"first: {missing[0]}); finish the job with --resume")
    results = [json.loads(found[i][0]) for i in range(len(manifest.inputs))]
    rows = [row for i in range(len(manifest.inputs)) for row in json.loads(found[i][1])]
    for file, text in keypoints_files(results, rows, columns).items():
        store.write_bytes(file, text.encode())
    return summarise(results, manifest.problems)
