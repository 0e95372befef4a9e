"""`facekeypoints detect`: photos, folders and videos in; JSON, CSV and drawn pictures out. In
this process; `batch/` runs the same job (`job.py`, `parts.py`) on Ray."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import cv2

from ..errors import UserError
from ..files import atomic_write_text
from ..progress import Progress
from ..quiet_import import stderr_silenced
from .job import is_video
from .landmarker import Landmarker
from .outputs import csv_text, draw, face_rows, write_jpeg
from .reading import VIDEO_SUFFIXES, PhotoError, read_photo
from .video import AnnotatedVideo, follow


def job_settings(landmarker: Landmarker, draw: bool, smooth: bool) -> dict:
    """What a job's results depend on besides its inputs and model (a --resume must match;
    either engine may resume the other's job)."""
    return {"detector": landmarker.detector, "fast": landmarker.fast,
            "min_score": landmarker.min_score, "max_faces": landmarker.max_faces, "draw": draw,
            "smooth": smooth}


def face_count(record: dict) -> int:
    """A photo's record lists its faces; a video's counts them."""
    faces = record["faces"]
    return faces if isinstance(faces, int) else len(faces)


def failed_record(name: str, error: BaseException) -> dict:
    """The record of an input that raised: its error in one line, naming the file."""
    lines = str(error).strip().splitlines()
    text = lines[0][:300] if lines else ""
    if not isinstance(error, UserError):  # a bug or a library's failure: say which
        text = f"{type(error).__name__}" + (f": {text}" if text else "")
    if not text.startswith(name):
        text = f"{name}: {text}"
    return {"file": name, "error": text, "faces": 0 if is_video(name) else []}


def keypoints_files(results: list[dict], rows: list[dict], columns) -> dict[str, str]:
    """keypoints.json and keypoints.csv, as text: every writer of them goes through here."""
    return {"keypoints.json": json.dumps(results, indent=1) + "\n",
            "keypoints.csv": csv_text(rows, columns)}


def summarise(results: list[dict], problems: list[str]) -> dict:
    return {"files": len(results), "faces": sum(map(face_count, results)),
            "unreadable": sum(1 for r in results if "error" in r), "skipped": problems}


def summary_line(summary: dict, out: str, draw: bool) -> str:
    drawn = draw and summary["files"] > summary["unreadable"]
    skipped = f", {len(summary['skipped'])} skipped" if summary["skipped"] else ""
    return (f"{summary['files']} file(s), {summary['faces']} face(s), {summary['unreadable']} "
            f"unreadable{skipped}; wrote {out}/keypoints.json, {out}/keypoints.csv (a row per "
            "face, and per face and frame of a video)"
            + (f", drawn copies in {out}/annotated/" if drawn else ""))


def detect_file(path: Path, landmarker: Landmarker, out: Path, draw_pictures: bool,
                note: Callable[[str], None], progress: str | bool | None = "auto",
                smooth: bool = True, name: str | None = None, stem: str | None = None
                ) -> tuple[dict, list[dict]]:
    """One input's entry in keypoints.json and its rows in keypoints.csv (a video's: one per
    face and frame); the drawn copy written to `out`/annotated/`stem`.jpg or .webm. `name` is
    what the outputs call the file (a batch worker's local copy of an object-store file keeps
    its URL)."""
    name = name or str(path)
    stem = stem or path.stem
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return run_video(path, landmarker, out, draw_pictures, note, progress, smooth, name,
                         stem)
    try:
        rgb = read_photo(path)  # once: the same pixels are detected and drawn
    except PhotoError as e:
        return {"file": name, "width": 0, "height": 0, "faces": [],
                "error": str(e).replace(str(path), name)}, []
    result = landmarker.detect(rgb)
    record = result.as_dict(name)
    faces = list(result)
    rows = face_rows(name, faces)
    found = f"{len(faces)} face(s)" if faces else "no face found"
    if draw_pictures:
        try:
            write_jpeg(out / "annotated" / f"{stem}.jpg", draw(rgb, faces))
        except Exception as e:  # noqa: BLE001 - the keypoints are kept all the same
            record["error"] = not_drawn(name, found, e)
            return record, rows
    note(f"{name}: {found}")
    return record, rows


def not_drawn(name: str, found: str, error: BaseException) -> str:
    """The error of an input whose keypoints were found but whose drawn copy failed."""
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return f"{name}: {found}, kept; its drawn copy could not be written ({reason})"


def run_video(path: Path, landmarker: Landmarker, out: Path, draw_pictures: bool,
              log: Callable[[str], None], progress: str | bool | None = "auto",
              smooth: bool = True, name: str | None = None, stem: str | None = None
              ) -> tuple[dict, list[dict]]:
    name = name or str(path)
    with stderr_silenced():  # FFmpeg's own complaint; the record says it in one line
        capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        return {"file": name, "error": f"{name}: unreadable video (no frames could be read)",
                "faces": 0}, []
    record, rows = track_video(capture, name, out / "annotated" / f"{stem or path.stem}.webm",
                               landmarker, draw_pictures, log, progress, smooth)
    if record["frames"] == 0:
        record["error"] = f"{name}: unreadable video (no frames could be read)"
    return record, rows


def run_webcam(device: int, landmarker: Landmarker, out: Path | None, draw_pictures: bool,
               log: Callable[[str], None], max_frames: int | None = None,
               smooth: bool = True) -> dict:
    """The same frame loop on a camera, until Ctrl+C or `max_frames`: keypoints.json,
    keypoints.csv and annotated/webcamN.webm in `out` (None: a new `detections-N`)."""
    from .job import new_folder, open_folder

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our one line says it
    try:
        capture = cv2.VideoCapture(device)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        raise UserError(f"--webcam {device}: OpenCV cannot open this camera")
    out = new_folder("detections") if out is None else out
    open_folder(out, resume=False)
    log(f"webcam {device}: Ctrl+C stops; writing to {out}")
    name = f"webcam{device}"
    record, rows = track_video(capture, name, out / "annotated" / f"{name}.webm", landmarker,
                               draw_pictures, log, "lines", smooth, max_frames, live=True)
    for file, text in keypoints_files([record], rows, landmarker.model.columns).items():
        atomic_write_text(out / file, text)
    return record


def track_video(capture, name: str, drawn: Path, landmarker: Landmarker, draw_pictures: bool,
                log: Callable[[str], None], progress: str | bool | None = "auto",
                smooth: bool = True, max_frames: int | None = None, live: bool = False
                ) -> tuple[dict, list[dict]]:
    """Every frame through a new tracker of `landmarker`'s: the record, a row per face and
    frame (with the frame's time), and the drawn copy (WebM, which browsers play) written
    atomically when the frames end (or on Ctrl+C for a live source)."""
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = 0 if live else int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
    tracker = landmarker.tracker(smooth)
    if draw_pictures:
        drawn.parent.mkdir(parents=True, exist_ok=True)
    video = AnnotatedVideo(drawn, fps)
    rows, index, busy, undrawn = [], 0, 0.0, None
    bar = Progress(frames or None, name, "frame", mode=progress, log=log, every=5.0)
    try:
        with video:
            try:
                for frame in follow(capture, tracker, fps, live, max_frames):
                    busy += frame.seconds
                    rows += face_rows(name, frame.faces, frame=frame.index, time=frame.time)
                    if draw_pictures and undrawn is None:
                        try:
                            video.write(draw(frame.rgb, frame.faces))
                        except Exception as e:  # noqa: BLE001 - the keypoints go on
                            undrawn = e
                            video.close(keep=False)
                    index = frame.index + 1
                    bar.update(1, faces=len(rows))
            except KeyboardInterrupt:
                if not live:
                    raise
            written = video.started
    finally:
        bar.close()
        capture.release()
    speed = index / busy if busy else 0.0
    per_face = 1000 * busy / len(rows) if rows else 0.0
    log(f"{name}: {index} frames, {len(rows)} face(s) found, {speed:.0f} frames per second "
        f"({per_face:.1f} ms per face; detector on {tracker.detections} frames)"
        + (f"; drew {video.path}" if written else ""))
    # what keypoints.json keeps: the same on every run (the speed is in the log line above)
    record = {"file": name, "frames": index, "faces": len(rows),
              "detections": tracker.detections}
    if undrawn is not None:
        record["error"] = not_drawn(name, f"{len(rows)} face(s) in {index} frames", undrawn)
    return record, rows


@contextlib.contextmanager
def stopped_by_signals():
    """SIGTERM stops a job as Ctrl+C does (the parts written are kept and the stop is said in
    one line), where this is the main thread; the handler before is put back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:  # a handler set outside Python (Ray's) reads as None: the default stands in
        signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before)


def stopped_by_signals_again() -> None:
    """Inside `stopped_by_signals`, after a library set a SIGTERM handler of its own (ray.init
    does: it prints a crash report and exits)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
