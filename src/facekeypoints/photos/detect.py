"""`facekeypoints detect`: photos, folders and videos in; JSON, CSV and drawn pictures out."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2

from ..errors import UserError
from ..files import atomic_write_text
from ..progress import Progress
from .outputs import csv_text, draw, face_rows, write_jpeg
from .pipeline import FacePipeline
from .reading import VIDEO_SUFFIXES, expand_inputs, read_photo
from .tracking import FaceTracker
from .video import AnnotatedVideo, follow


def run_detect(inputs: list[str], pipeline: FacePipeline, out: Path, draw_pictures: bool = True,
               log: Callable[[str], None] = print, progress: str | bool | None = "auto",
               smooth: bool = True) -> dict:
    """Every photo and video in `inputs` (files or folders); results written atomically to `out`
    even where some inputs cannot be read (the summary counts them)."""
    files, problems = expand_inputs(inputs)
    if not files:
        raise UserError(f"nothing to process in {' '.join(inputs)}: "
                        f"{'; '.join(problems) or 'no photos or videos'}")
    out.mkdir(parents=True, exist_ok=True)
    results, rows = [], []
    total_faces = 0
    with Progress(len(files), "detect", "file", mode=progress, log=log, every=5.0) as bar:
        for p in problems:
            bar.note(f"skipped: {p}")
        for i, path in enumerate(files, start=1):
            record, found = detect_file(path, pipeline, out, draw_pictures, bar.note, progress,
                                        smooth, f"[{i}/{len(files)}] ")
            results.append(record)
            rows += found
            total_faces += face_count(record)
            bar.update(1, faces=total_faces)
    for file, text in keypoints_files(results, rows, pipeline.model.columns).items():
        atomic_write_text(out / file, text)
    summary = summarise(results, problems)
    log(summary_line(summary, str(out), draw_pictures))
    return summary


def face_count(record: dict) -> int:
    """A photo's record lists its faces; a video's counts them."""
    faces = record["faces"]
    return faces if isinstance(faces, int) else len(faces)


def keypoints_files(results: list[dict], rows: list[dict], columns) -> dict[str, str]:
    """keypoints.json and keypoints.csv, as text: every writer of them goes through here."""
    return {"keypoints.json": json.dumps(results, indent=1) + "\n",
            "keypoints.csv": csv_text(rows, columns)}


def summarise(results: list[dict], problems: list[str]) -> dict:
    return {"files": len(results), "faces": sum(map(face_count, results)),
            "unreadable": sum(1 for r in results if "error" in r), "skipped": problems}


def summary_line(summary: dict, out: str, draw_pictures: bool) -> str:
    return (f"{summary['files']} file(s), {summary['faces']} face(s), {summary['unreadable']} "
            f"unreadable; wrote {out}/keypoints.json, {out}/keypoints.csv"
            + (f", {out}/annotated/" if draw_pictures else ""))


def detect_file(path: Path, pipeline: FacePipeline, out: Path, draw_pictures: bool,
                note: Callable[[str], None], progress: str | bool | None = "auto",
                smooth: bool = True, prefix: str = "", name: str | None = None
                ) -> tuple[dict, list[dict]]:
    """One input's entry in keypoints.json and its rows in keypoints.csv (a video's are in its
    own CSV); pictures and videos drawn into `out`. `name` is what the outputs call the file
    (a batch worker's local copy of an object-store file keeps its URL)."""
    name = name or str(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return run_video(path, pipeline, out, draw_pictures, note, progress, smooth, name), []
    result = pipeline.photo(path)
    record = {"file": name, "width": result.width, "height": result.height,
              "faces": [f.as_dict() for f in result.faces]}
    if result.error:
        record["error"] = result.error.replace(str(path), name)
        note(f"{prefix}{record['error']}")
        return record, []
    if draw_pictures:
        write_jpeg(out / "annotated" / f"{path.stem}.jpg", draw(read_photo(path), result.faces))
    found = f"{len(result.faces)} face(s)" if result.faces else "no face found"
    note(f"{prefix}{path.name}: {found}")
    return record, face_rows(name, result.faces)


def run_video(path: Path, pipeline: FacePipeline, out: Path, draw_pictures: bool,
              log: Callable[[str], None], progress: str | bool | None = "auto",
              smooth: bool = True, name: str | None = None) -> dict:
    name = name or str(path)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        log(f"{name}: unreadable video")
        return {"file": name, "error": f"{name}: unreadable video", "faces": 0}
    return track_video(capture, name, path.stem, pipeline, out, draw_pictures, log,
                       progress, smooth)


def run_webcam(device: int, pipeline: FacePipeline, out: Path, draw_pictures: bool,
               log: Callable[[str], None], max_frames: int | None = None,
               smooth: bool = True) -> dict:
    """The same frame loop on a camera, until Ctrl+C or `max_frames`."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our one line says it
    try:
        capture = cv2.VideoCapture(device)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        raise UserError(f"--webcam {device}: OpenCV cannot open this camera")
    log(f"webcam {device}: Ctrl+C stops; writing to {out}")
    out.mkdir(parents=True, exist_ok=True)
    return track_video(capture, f"webcam{device}", f"webcam{device}", pipeline, out,
                       draw_pictures, log, "lines", smooth, max_frames, live=True)


def track_video(capture, name: str, stem: str, pipeline: FacePipeline, out: Path,
                draw_pictures: bool, log: Callable[[str], None],
                progress: str | bool | None = "auto", smooth: bool = True,
                max_frames: int | None = None, live: bool = False) -> dict:
    """Every frame through a FaceTracker: keypoints CSV and an annotated video, written
    atomically when the frames end (or on Ctrl+C for a live source); frames per second."""
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = 0 if live else int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
    tracker = FaceTracker(pipeline, smooth=smooth)
    video = AnnotatedVideo(out / f"{stem}_annotated.mp4", fps)
    rows, index, busy = [], 0, 0.0
    bar = Progress(frames or None, name, "frame", mode=progress, log=log, every=5.0)
    try:
        with video:
            try:
                for frame in follow(capture, tracker, fps, live, max_frames):
                    busy += frame.seconds
                    rows += face_rows(name, frame.faces, frame=frame.index)
                    if draw_pictures:
                        video.write(draw(frame.rgb, frame.faces))
                    index = frame.index + 1
                    bar.update(1, faces=len(rows))
            except KeyboardInterrupt:
                if not live:
                    raise
            written = video.started
    finally:
        bar.close()
        capture.release()
    atomic_write_text(out / f"{stem}_keypoints.csv", csv_text(rows, pipeline.model.columns))
    speed = index / busy if busy else 0.0
    per_face = 1000 * busy / len(rows) if rows else 0.0
    log(f"{name}: {index} frames, {len(rows)} face(s) found, {speed:.0f} frames per second "
        f"({per_face:.1f} ms per face; detector on {tracker.detections} frames); wrote "
        f"{out / (stem + '_keypoints.csv')}" + (f", {video.path}" if written else ""))
    # what keypoints.json keeps: the same on every run (the speed is in the log line above)
    return {"file": name, "frames": index, "faces": len(rows), "detections": tracker.detections}
