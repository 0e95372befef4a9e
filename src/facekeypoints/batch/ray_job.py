"""The batch job's driver: the same job as `detect` in one process (`photos/job.py`), its tasks
run on a Ray Data actor pool (each actor loads the model once and runs `photos.parts.PartWorker`),
with progress, and the same merge.

Without `address` it starts Ray on this machine and stops it at the end; with one (`auto`, or
HOST:PORT of a cluster begun with `ray start --head`) it joins that cluster and leaves it up.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import Interrupted, UserError
from ..extras import missing
from ..onnx_runtime import THREADS
from ..photos.detect import (
    face_count,
    job_settings,
    stopped_by_signals,
    stopped_by_signals_again,
    summary_line,
)
from ..photos.job import Manifest, fingerprint_of, nothing_to_process, open_folder
from ..photos.landmarker import Landmarker
from ..photos.parts import PartWorker, done_tasks, merge, read_parts
from ..progress import Progress
from ..quiet_import import stderr_silenced
from .model_spec import ModelSpec
from .store import download, is_url, list_inputs, open_store, store_for


def run_ray(inputs: Sequence[str | Path], model: str | Path | None, out: str | Path, *,
            address: str | None = None, workers: int | None = None, resume: bool = False,
            detector: str = "blazeface", fast: bool = False, draw: bool = True,
            smooth: bool = True, min_score: float | None = None, max_faces: int | None = None,
            part_size: int | None = None, progress: str | bool | None = "auto",
            log: Callable[[str], None] = print, made_out: bool = False) -> dict:
    """`detect` on Ray: the same outputs, written part by part (see the package docstring)."""
    for module in ("ray", "pyarrow"):  # before anything is planned or written
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise missing(module, "detect --engine ray")
    inputs, out = [str(i) for i in inputs], str(out)
    spec, predictor = ModelSpec.of(model)
    landmarker = Landmarker(predictor, detector=detector, fast=fast, min_score=min_score,
                            max_faces=max_faces, smooth=smooth)
    entries, problems = list_inputs(inputs, exclude=None if is_url(out) else out)
    if not entries:
        raise nothing_to_process(inputs, problems)
    store = open_store(out, resume) if is_url(out) else open_folder(out, resume, made_out)
    settings = job_settings(landmarker, draw, smooth)
    fingerprint = fingerprint_of(landmarker.model)

    def plan(n_workers: int) -> Manifest:
        return Manifest.plan(entries, problems, inputs, spec.name, fingerprint, settings,
                             n_workers, part_size)

    for problem in problems:
        log(f"skipped: {problem}")
    stats: dict = {}
    with store.lock(), stopped_by_signals():
        # planned (and so claimed) before Ray starts where the workers are known; a cluster's
        # are known once joined
        known = workers or (None if address else os.cpu_count() or 1)
        manifest = plan(known or 1).begin(store, resume) if resume or known else None
        try:
            if manifest is None or len(done_tasks(store)) < len(manifest.tasks):
                started = _connect(address, workers)
                try:
                    import ray

                    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
                    if manifest is None:
                        manifest = plan(workers).begin(store, resume)
                    stopped_by_signals_again()  # ray.init set a handler of its own
                    stats = _run_pending(manifest, store, spec, settings, out, workers,
                                         progress, log)
                finally:
                    if started:
                        with stderr_silenced():
                            ray.shutdown()
        except KeyboardInterrupt:  # Ctrl+C or SIGTERM, while Ray starts or runs the tasks
            kept = len(read_parts(store, manifest)) if manifest else 0
            total = len(manifest.inputs) if manifest else len(entries)
            raise Interrupted(f"interrupted: {kept} of {total} file(s) are kept in {out}/parts; "
                              "add --resume to finish the job") from None
        summary = merge(store, manifest, landmarker.model.columns)
    log(summary_line(summary, out, draw))
    return {**summary, "ray": stats}


def _run_pending(manifest: Manifest, store, spec: ModelSpec, settings: dict, out: str,
                 workers: int, progress: str | bool | None, log: Callable[[str], None]) -> dict:
    """The tasks with no part yet, on the pool; one line where Ray or the user stops them."""
    before = read_parts(store, manifest)
    pending = [t for t in range(len(manifest.tasks)) if t not in done_tasks(store)]
    log(f"{len(manifest.inputs)} file(s) in {len(manifest.tasks)} part(s)"
        + (f", {len(manifest.tasks) - len(pending)} done before" if before else "")
        + f"; {workers} Ray worker(s); writing to {out}")
    try:
        return _run(manifest, pending, before, spec, settings, out, workers, progress, log)
    except Exception as e:  # noqa: BLE001 - Ray's errors arrive as pages of traceback
        last = (str(e).strip().splitlines() or [type(e).__name__])[-1]
        raise UserError(f"the Ray job stopped ({type(e).__name__}: {last}); the parts "
                        f"written are kept in {out}/parts: add --resume to finish "
                        "it") from None


def _connect(address: str | None, workers: int | None) -> bool:
    """Ray joined (`address`) or started here; True where this process started it."""
    import ray

    if ray.is_initialized():
        return False
    if address and address != "auto":
        _check_reachable(address)
    # Ray's C++ side warns on stderr about how Ray Data passes an actor's arguments; its logs
    # stay in /tmp/ray (RAY_BACKEND_LOG_LEVEL set by the user wins)
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    options = {"include_dashboard": False, "log_to_driver": False,
               "logging_level": logging.ERROR}
    try:
        with stderr_silenced():  # C++ says it read that level, at its info level
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(address="local", num_cpus=max(os.cpu_count() or 1, workers or 1),
                         **options)
    except ConnectionError as e:
        raise UserError(f"--address {address}: no Ray cluster answers there ({e})") from None
    except KeyboardInterrupt:  # stopped while Ray starts: what it started so far stops too
        with stderr_silenced():
            ray.shutdown()
        raise
    return not address


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """A quick answer where nothing listens (`ray.init` would retry for minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address}: expected auto or HOST:PORT (the head's "
                        "`ray start --head --port`)")
    try:
        socket.create_connection((host.removeprefix("ray://"), int(port)), timeout).close()
    except OSError as e:
        raise UserError(f"--address {address}: no Ray cluster answers there ({e})") from None


class _RayWorker:
    """One actor of the pool: a PartWorker, with its own Landmarker, on the node Ray placed it
    on, one thread."""

    def __init__(self, spec: ModelSpec, settings: dict, out: str):
        import cv2
        import ray

        os.environ[THREADS] = "1"  # before the first session starts its threads
        cv2.setNumThreads(1)
        self.node = ray.get_runtime_context().get_node_id()
        landmarker = Landmarker(spec.load(), detector=settings["detector"],
                                fast=settings["fast"], min_score=settings["min_score"],
                                max_faces=settings["max_faces"], smooth=settings["smooth"])
        self.worker = PartWorker(landmarker, settings, store_for(out),
                                 fetch=lambda file, folder: download(file, folder)
                                 if is_url(file) else Path(file))

    def __call__(self, batch: dict) -> dict:
        results = [self.worker(int(task), json.loads(inputs), self.node)
                   for task, inputs in zip(batch["task"], batch["inputs"], strict=True)]
        return {key: [r[key] for r in results] for key in results[0]}


def _run(manifest: Manifest, pending: list[int], before: dict[int, dict], spec: ModelSpec,
         settings: dict, out: str, workers: int, progress: str | bool | None,
         log: Callable[[str], None]) -> dict:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours counts files, not blocks
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its lines are in /tmp/ray too
    tasks = ray.data.from_items(
        [{"task": t, "inputs": json.dumps([{"index": i, **manifest.inputs[i]}
                                           for i in manifest.tasks[t]])} for t in pending],
        override_num_blocks=len(pending))
    results = tasks.map_batches(
        _RayWorker, batch_size=1, num_cpus=1, compute=ray.data.ActorPoolStrategy(size=workers),
        fn_constructor_kwargs={"spec": spec, "settings": settings, "out": out})
    total = len(manifest.inputs)
    faces = sum(face_count(r["record"]) for r in before.values())
    begun, first, workers_seen = time.monotonic(), None, {}
    with Progress(total, "detect on ray", "file", initial=len(before), mode=progress, log=log,
                  every=5.0) as bar:
        if before:
            bar.note(f"{len(before)} of {total} file(s) done before; going on")
        for row in results.iter_rows():
            first = first or (time.monotonic(), bar.n + int(row["files"]))
            faces += int(row["faces"])
            for error in json.loads(row["errors"]):
                bar.warn(error)
            bar.update(int(row["files"]), faces=faces)
            if bar.n > first[1]:
                rate = (bar.n - first[1]) / (time.monotonic() - first[0])
                bar.figures["files_per_s"] = f"{rate:.1f}"
            seen = workers_seen.setdefault(int(row["pid"]), {"node": row["node"], "files": 0})
            seen["files"] += int(row["files"])
            seen["peak_rss_mb"] = round(float(row["peak_rss_mb"]), 1)
    first = first or (time.monotonic(), bar.n)
    # the steady state: from the first part to the last (the actors start before the first)
    return {"parts": len(pending), "first_part_s": round(first[0] - begun, 3),
            "steady_files": bar.n - first[1], "steady_s": round(time.monotonic() - first[0], 3),
            "workers": [{"pid": pid, **w} for pid, w in sorted(workers_seen.items())]}
