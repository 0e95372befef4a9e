"""The batch job's driver: plan (or resume) the manifest, run the tasks without a part on a Ray
Data actor pool (each actor loads the model once: `PartWorker`), show progress, merge.

Without `address` it starts Ray on this machine and stops it at the end; with one (`auto`, or
HOST:PORT of a cluster begun with `ray start --head`) it joins that cluster and leaves it up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import UserError
from ..photos.detect import summary_line
from ..progress import Progress
from .manifest import MANIFEST, Manifest, ModelSpec
from .parts import PartWorker, done_tasks, merge
from .store import Store, list_inputs


def run_ray(inputs: Sequence[str | Path], model: str | Path | None, out: str | Path, *,
            address: str | None = None, workers: int | None = None, resume: bool = False,
            detector: str = "blazeface", fast: bool = False, draw: bool = True,
            smooth: bool = True, part_size: int | None = None,
            progress: str | bool | None = "auto",
            log: Callable[[str], None] = print) -> dict:
    """`detect` on Ray: the same outputs, written part by part (see the package docstring)."""
    inputs = [str(i) for i in inputs]
    spec, predictor = ModelSpec.of(model)
    store = Store(out)
    entries, problems = list_inputs(inputs)
    if not entries:
        raise UserError(f"nothing to process in {' '.join(inputs)}: "
                        f"{'; '.join(problems) or 'no photos or videos'}")
    settings = {"detector": detector, "fast": fast, "draw": draw, "smooth": smooth}
    for problem in problems:
        log(f"skipped: {problem}")
    manifest = None
    if store.exists(MANIFEST):  # checked before Ray starts: a refusal is quick
        if not resume:
            raise UserError(f"{out}: holds a batch job already ({MANIFEST}); add --resume to "
                            "finish it, or choose another --out")
        manifest = Manifest.read(store)
        manifest.check_resumes(Manifest.plan(entries, problems, spec, settings, 1), str(out))
    stats = {}
    if manifest is None or len(done_tasks(store)) < len(manifest.tasks):
        started = _connect(address, workers)
        try:
            import ray

            workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            if manifest is None:
                manifest = Manifest.plan(entries, problems, spec, settings, workers, part_size)
                manifest.write(store)
            done = done_tasks(store)
            pending = [t for t in range(len(manifest.tasks)) if t not in done]
            log(f"{len(manifest.inputs)} file(s) in {len(manifest.tasks)} part(s)"
                + (f", {len(done)} done before" if done else "")
                + f"; {workers} Ray worker(s); writing to {out}")
            try:
                stats = _run(manifest, pending, spec, settings, str(out), workers, progress,
                             log)
            except KeyboardInterrupt:
                log(f"interrupted; the parts written are kept in {out}/parts: add --resume to "
                    "finish the job")
                raise
            except Exception as e:  # noqa: BLE001 - Ray's errors arrive as pages of traceback
                last = (str(e).strip().splitlines() or [type(e).__name__])[-1]
                raise UserError(f"the Ray job stopped ({type(e).__name__}: {last}); the parts "
                                f"written are kept in {out}/parts: add --resume to finish "
                                "it") from None
        finally:
            if started:
                ray.shutdown()
    summary = merge(store, manifest, predictor.columns)
    log(summary_line(summary, str(out), draw))
    return {**summary, "ray": stats}


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
        with _stderr_silenced():  # C++ says it read that level, at its info level
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(address="local", num_cpus=max(os.cpu_count() or 1, workers or 1),
                         **options)
    except ConnectionError as e:
        raise UserError(f"--address {address}: no Ray cluster answers there ({e})") from None
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


@contextlib.contextmanager
def _stderr_silenced():
    """File descriptor 2 (where C++ writes) to /dev/null for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _RayWorker:
    """One actor of the pool: a PartWorker on the node Ray placed it on."""

    def __init__(self, spec: ModelSpec, settings: dict, out: str):
        import ray

        self.node = ray.get_runtime_context().get_node_id()
        self.worker = PartWorker(spec, settings, out)

    def __call__(self, batch: dict) -> dict:
        results = [self.worker(int(task), json.loads(inputs), self.node)
                   for task, inputs in zip(batch["task"], batch["inputs"], strict=True)]
        return {key: [r[key] for r in results] for key in results[0]}


def _run(manifest: Manifest, pending: list[int], spec: ModelSpec, settings: dict, out: str,
         workers: int, progress: str | bool | None, log: Callable[[str], None]) -> None:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours counts files, not blocks
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its lines are in /tmp/ray too
    tasks = ray.data.from_items(
        [{"task": t, "inputs": json.dumps([[i, manifest.inputs[i]["file"]]
                                           for i in manifest.tasks[t]])} for t in pending],
        override_num_blocks=len(pending))
    results = tasks.map_batches(
        _RayWorker, batch_size=1, num_cpus=1, compute=ray.data.ActorPoolStrategy(size=workers),
        fn_constructor_kwargs={"spec": spec, "settings": settings, "out": out})
    total = len(manifest.inputs)
    done = total - sum(len(manifest.tasks[t]) for t in pending)
    faces, begun, first, workers_seen = 0, time.monotonic(), None, {}
    with Progress(total, "detect on ray", "file", initial=done, mode=progress, log=log,
                  every=5.0) as bar:
        for row in results.iter_rows():
            first = first or (time.monotonic(), bar.n + int(row["files"]))
            faces += int(row["faces"])
            for error in json.loads(row["errors"]):
                bar.note(error)
            bar.update(int(row["files"]), faces=faces)
            if bar.n > first[1]:
                rate = (bar.n - first[1]) / (time.monotonic() - first[0])
                bar.figures["files_per_s"] = f"{rate:.1f}"
            seen = workers_seen.setdefault(int(row["pid"]), {"node": row["node"], "files": 0})
            seen["files"] += int(row["files"])
            seen["peak_rss_mb"] = round(float(row["peak_rss_mb"]), 1)
    # the steady state: from the first part to the last (the actors start before the first)
    return {"parts": len(pending), "first_part_s": round(first[0] - begun, 3),
            "steady_files": bar.n - first[1], "steady_s": round(time.monotonic() - first[0], 3),
            "workers": [{"pid": pid, **w} for pid, w in sorted(workers_seen.items())]}
