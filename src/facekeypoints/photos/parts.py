"""A task of a `detect` job, and the merge at its end, for either engine. A worker runs each
input of a task through `detect_file` (whatever one input raises becomes its error record, and
the task goes on) and writes the task's results as one part, whole or not at all; the merge
puts every part's inputs back in the manifest's order and writes keypoints.json and
keypoints.csv, after checking each input is there exactly once."""

from __future__ import annotations

import json
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import UserError
from .detect import detect_file, face_count, failed_record, keypoints_files, summarise
from .job import Manifest
from .landmarker import Landmarker
from .pipeline import FacePipeline


def part_name(task: int) -> str:
    return f"parts/part-{task:06d}.json"


def done_tasks(store) -> set[int]:
    return {int(name[5:-5]) for name in store.files("parts")
            if name.startswith("part-") and name.endswith(".json")}


class PartWorker:
    """Runs tasks with one loaded landmarker: pictures and videos drawn into the job's folder
    (staged and uploaded where it is object storage), the part written last. `fetch(file,
    folder)` gives a local copy of an input that is not on this disk."""

    def __init__(self, landmarker: Landmarker | FacePipeline, settings: dict, store,
                 fetch: Callable[[str, Path], Path] | None = None):
        self.landmarker = Landmarker.of(landmarker, settings["smooth"])
        self.settings, self.store = settings, store
        self.fetch = fetch

    def __call__(self, task: int, inputs: list[dict], node: str = "",
                 note: Callable[[str], None] = lambda line: None,
                 done: Callable[[dict], None] = lambda record: None,
                 progress: str | bool | None = False,
                 warn: Callable[[str], None] | None = None) -> dict:
        """`inputs`: each {"index", "file", "out"} (and "read", where the file is read under
        another name than the job gave it); `note` gets each input's log line, `warn`
        (by default `note`) each input's error, `done` each input's record as it is
        finished."""
        warn = warn or note
        start = time.perf_counter()
        results = []
        with tempfile.TemporaryDirectory(prefix="facekeypoints-part-") as tmp:
            staging = Path(tmp) / "out"  # drawn outputs on their way to object storage
            out = self.store.local or staging
            for item in inputs:
                file, path = item["file"], None
                source = item.get("read", file)
                try:
                    path = self.fetch(source, Path(tmp)) if self.fetch else Path(source)
                    record, rows = detect_file(path, self.landmarker, out, self.settings["draw"],
                                               note, progress, self.settings["smooth"],
                                               name=file, stem=item["out"])
                except Exception as e:  # noqa: BLE001 - one input's failure is its own record
                    record, rows = failed_record(file, e), []
                finally:
                    if path is not None and path != Path(source):
                        path.unlink(missing_ok=True)
                if "error" in record:
                    warn(record["error"])
                results.append({"index": item["index"], "record": record, "rows": rows})
                done(record)
            if self.store.local is None and staging.is_dir():
                self.store.upload(staging)
        part = {"task": task, "node": node, "pid": os.getpid(), "inputs": results}
        self.store.write_bytes(part_name(task), json.dumps(part).encode())
        records = [r["record"] for r in results]
        return {"task": task, "files": len(records), "faces": sum(map(face_count, records)),
                "errors": json.dumps([r["error"] for r in records if "error" in r]),
                "unreadable": sum("error" in r for r in records), "node": node,
                "pid": os.getpid(), "seconds": time.perf_counter() - start,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def read_parts(store, manifest: Manifest) -> dict[int, dict]:
    """Every finished input's result by its index, checked against the manifest."""
    found: dict[int, dict] = {}
    for task in sorted(done_tasks(store)):
        part = json.loads(store.read_bytes(part_name(task)))
        for result in part["inputs"]:
            index = result["index"]
            if index in found or not 0 <= index < len(manifest.inputs):
                raise UserError(f"{store.location}: {part_name(task)} repeats or does not know "
                                f"input {index}; the parts do not match parts/manifest.json")
            found[index] = result
    return found


def merge(store, manifest: Manifest, columns: list[str]) -> dict:
    """keypoints.json and keypoints.csv from the parts; the job's summary."""
    found = read_parts(store, manifest)
    missing = [e["file"] for i, e in enumerate(manifest.inputs) if i not in found]
    if missing:
        raise UserError(f"{store.location}: {len(missing)} input(s) have no results yet (the "
                        f"first: {missing[0]}); finish the job with --resume")
    results = [found[i]["record"] for i in range(len(manifest.inputs))]
    rows = [row for i in range(len(manifest.inputs)) for row in found[i]["rows"]]
    for file, text in keypoints_files(results, rows, columns).items():
        # a name that is not UTF-8 (an old card's) keeps its own bytes, as the disk has them
        store.write_bytes(file, text.encode("utf-8", "surrogateescape"))
    return summarise(results, manifest.problems)
