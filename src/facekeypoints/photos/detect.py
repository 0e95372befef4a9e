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
            if path.suffix.lower() in VIDEO_SUFFIXES:
                summary = run_video(path, pipeline, out, draw_pictures, bar.note, progress,
                                    smooth)
                results.append(summary)
                total_faces += summary["faces"]
                bar.update(1, faces=total_faces)
                continue
            result = pipeline.photo(path)
            record = {"file": str(path), "width": result.width, "height": result.height,
                      "faces": [f.as_dict() for f in result.faces]}
            if result.error:
                record["error"] = result.error
                bar.note(f"[{i}/{len(files)}] {result.error}")
            else:
                if draw_pictures:
                    write_jpeg(out / "annotated" / f"{path.stem}.jpg",
                                draw(read_photo(path), result.faces))
                note = f"{len(result.faces)} face(s)" if result.faces else "no face found"
                bar.note(f"[{i}/{len(files)}] {path.name}: {note}")
            total_faces += len(result.faces)
            results.append(record)
            rows += face_rows(str(path), result.faces)
            bar.update(1, faces=total_faces)
    atomic_write_text(out / "keypoints.json", json.dumps(results, indent=1) + "\n")
    atomic_write_text(out / "keypoints.csv", csv_text(rows, pipeline.model.columns))
    summary = {"files": len(files), "faces": total_faces,
               "unreadable": sum(1 for r in results if "error" in r), "skipped": problems}
    log(f"{summary['files']} file(s), {total_faces} face(s), {summary['unreadable']} unreadable; "
        f"wrote {out / 'keypoints.json'}, {out / 'keypoints.csv'}"
        + (f", {out / 'annotated'}/" if draw_pictures else ""))
    return summary


def run_video(path: Path, pipeline: FacePipeline, out: Path, draw_pictures: bool,
              log: Callable[[str], None], progress: str | bool | None = "auto",
              smooth: bool = True) -> dict:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        log(f"{path}: unreadable video")
        return {"file": str(path), "error": f"{path}: unreadable video", "faces": 0}
    return track_video(capture, str(path), path.stem, pipeline, out, draw_pictures, log,
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
    return {"file": name, "frames": index, "faces": len(rows), "frames_per_second": speed,
            "ms_per_face": per_face, "detections": tracker.detections}
