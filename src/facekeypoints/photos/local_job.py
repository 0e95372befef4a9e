"""A `detect` job in this process: the plan, each task run in turn and kept as a part, the
merge; what `facekeypoints detect` runs unless `--engine ray` (which runs the same job on Ray).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import Interrupted
from ..progress import Progress
from .detect import face_count, job_settings, stopped_by_signals, summary_line
from .job import Manifest, fingerprint_of, list_local, nothing_to_process, open_folder
from .landmarker import Landmarker
from .parts import PartWorker, done_tasks, merge, read_parts
from .pipeline import FacePipeline


def run_detect(inputs: list[str], landmarker: Landmarker | FacePipeline, out: Path,
               draw_pictures: bool = True,
               log: Callable[[str], None] = print, progress: str | bool | None = "auto",
               smooth: bool = True, resume: bool = False, part_size: int | None = None,
               made_out: bool = False) -> dict:
    """Every photo and video in `inputs` (files, folders searched to any depth) as a job in
    `out`: planned, run task by task (each task's results kept as a part, so a killed job
    loses at most one task: `resume=True` finishes it), merged into keypoints.json and
    keypoints.csv. One input's failure is its record; the summary counts them. A FacePipeline
    built by hand is taken as the landmarker around it."""
    landmarker = Landmarker.of(landmarker, smooth)
    entries, problems = list_local(inputs, exclude=out)
    if not entries:
        raise nothing_to_process(inputs, problems)
    store = open_folder(out, resume, made_out)
    settings = job_settings(landmarker, draw_pictures, smooth)
    plan = Manifest.plan(entries, problems, inputs, landmarker.model.name,
                         fingerprint_of(landmarker.model), settings, 1, part_size)
    with store.lock(), stopped_by_signals():
        manifest = plan.begin(store, resume)
        before = read_parts(store, manifest)
        done = done_tasks(store)
        pending = [t for t in range(len(manifest.tasks)) if t not in done]
        total = len(manifest.inputs)
        faces = sum(face_count(r["record"]) for r in before.values())
        worker = PartWorker(landmarker, settings, store)
        with Progress(total, "detect", "file", initial=len(before), mode=progress, log=log,
                      every=5.0) as bar:
            for p in problems:
                bar.warn(f"skipped: {p}")
            if before:
                bar.note(f"{len(before)} of {total} file(s) done before; going on")

            def finished(record: dict) -> None:
                nonlocal faces
                faces += face_count(record)
                bar.update(1, faces=faces)

            try:
                for task in pending:
                    items = [{"index": i, **manifest.inputs[i]} for i in manifest.tasks[task]]
                    worker(task, items, note=lambda line: bar.note(f"[{bar.n + 1}/{total}] "
                                                                   f"{line}"),
                           done=finished, progress=progress, warn=bar.warn)
            except KeyboardInterrupt:
                kept = len(read_parts(store, manifest))
                raise Interrupted(f"interrupted: {kept} of {total} file(s) are kept in "
                                  f"{out}/parts; add --resume to finish the job") from None
        summary = merge(store, manifest, landmarker.model.columns)
    log(summary_line(summary, str(out), draw_pictures))
    return summary
