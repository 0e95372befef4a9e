"""What `serve` does for a request, free of any web framework: the HTTP app (`app`) and the
page (`page`) both call it. The model, the detector and the limits live here, and so does the
deadline of each request: work whose client has been told it timed out stops at the next face
search instead of holding the model."""

from __future__ import annotations

import contextlib
import io
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath

import cv2
import numpy as np

from ..photos.outputs import draw, face_rows, photo_record
from ..photos.pipeline import Face, FacePipeline
from ..photos.reading import VIDEO_SUFFIXES, PhotoError, PhotoTooLarge, decode_photo
from ..photos.tracking import FaceTracker
from ..photos.video import AnnotatedVideo, follow


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server."""

    upload_mb: float = 50.0  # the whole request body, photos and videos alike
    max_pixels: int = 40_000_000  # a photo's width x height, checked before decoding
    video_seconds: float = 60.0
    timeout_s: float = 120.0  # waiting for the model included

    @property
    def upload_bytes(self) -> int:
        return int(self.upload_mb * 1024 * 1024)


class RequestError(Exception):
    """A request the server refuses: an HTTP status and one line saying why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def upload_name(filename: str | None, fallback: str) -> str:
    """The uploaded file's own name, for the records only: never used as a path."""
    name = PurePath((filename or "").replace("\\", "/")).name
    return name[:200] or fallback


class KeypointService:
    """The model, the detector and the limits, shared by the API and the page. One request uses
    the model at a time (Keras models and the detector are not made for several threads)."""

    def __init__(self, model, detector: str = "blazeface", limits: Limits | None = None):
        from ..inference.loading import builtin_path, load

        self.predictor = load(model, prefer_onnx=True)  # None: the built-in model
        self.pipeline = FacePipeline(self.predictor, detector)
        self.detector, self.limits = detector, limits or Limits()
        self.model_path = str(model if model is not None else builtin_path())
        self._lock = threading.Lock()

    def deadline(self) -> float:
        """When a request that starts now must be done, on `time.monotonic`'s clock."""
        return time.monotonic() + self.limits.timeout_s

    def health(self) -> dict:
        from .. import __version__

        return {"status": "ok", "version": __version__, "model": self.predictor.name,
                "model_path": self.model_path, "model_kind": type(self.predictor).__name__,
                "detector": self.detector, "scheme": self.predictor.scheme.name,
                "keypoints": self.predictor.keypoints,
                "limits": asdict(self.limits)}

    def decode(self, data: bytes, name: str) -> np.ndarray:
        if not data:
            raise RequestError(400, f"{name}: empty upload (0 bytes)")
        try:
            return decode_photo(io.BytesIO(data), name, self.limits.max_pixels)
        except PhotoError as e:
            raise RequestError(413 if isinstance(e, PhotoTooLarge) else 400, str(e)) from None

    def faces(self, rgb: np.ndarray, tracker: FaceTracker | None = None,
              t: float | None = None, deadline: float | None = None) -> tuple[list[Face], float]:
        """The faces in one picture, or in the next frame (at `t` seconds) that `tracker`
        follows. Past `deadline` (waiting for the model included) it refuses with a 504."""
        wait = -1 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._lock.acquire(timeout=wait):
            raise _too_slow(self.limits)
        try:
            if deadline is not None and time.monotonic() > deadline:
                raise _too_slow(self.limits)
            start = time.perf_counter()
            faces = tracker(rgb, t) if tracker is not None else self.pipeline.faces_in(rgb)
            return faces, time.perf_counter() - start
        finally:
            self._lock.release()

    def photo(self, data: bytes, name: str, deadline: float | None = None) -> dict:
        """One photo's record, in the format of `detect`'s keypoints.json."""
        rgb = self.decode(data, name)
        faces, seconds = self.faces(rgb, deadline=deadline)
        return photo_record(name, rgb, faces, seconds)

    def video(self, data: bytes, name: str, deadline: float | None = None) -> dict:
        """Every frame's faces, from an uploaded video."""
        if not data:
            raise RequestError(400, f"{name}: empty upload (0 bytes)")
        suffix = PurePath(name).suffix.lower()
        suffix = suffix if suffix in VIDEO_SUFFIXES else ".mp4"
        with tempfile.TemporaryDirectory(prefix="facekeypoints-") as folder:
            path = Path(folder) / f"upload{suffix}"  # our own name, never the client's
            path.write_bytes(data)
            return self.video_file(path, name, deadline=deadline)

    def video_file(self, path: Path, name: str, annotate_to: Path | None = None,
                   rows: list[dict] | None = None, deadline: float | None = None) -> dict:
        """Every frame's faces, followed and smoothed as `detect` follows them; `annotate_to`
        (a .webm or .mp4) gets a drawn copy, `rows` the CSV rows."""
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                raise RequestError(400, f"{name}: not a video OpenCV can read, or no frames")
            fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            limit, max_pixels = self.limits.video_seconds, self.limits.max_pixels
            if count / fps > limit:
                raise RequestError(413, f"{name}: video is {count / fps:.1f} s long; the limit "
                                   f"is {limit:g} s")
            max_frames = int(limit * fps) + 1  # a header may understate the length

            def check(index: int, rgb: np.ndarray) -> None:
                height, width = rgb.shape[:2]
                if width * height > max_pixels:
                    raise RequestError(413, f"{name}: frames of {width}x{height} pixels; the "
                                       f"limit is {max_pixels:,}")
                if index >= max_frames:
                    raise RequestError(413, f"{name}: video runs past {limit:g} s; the limit")

            tracker = FaceTracker(self.pipeline)  # found once, then followed and smoothed

            spent = []  # seconds with the model, not waiting for it

            def faces_of(rgb: np.ndarray, t: float) -> list[Face]:
                faces, seconds = self.faces(rgb, tracker, t, deadline)
                spent.append(seconds)
                return faces

            frames, size = [], (0, 0)
            video = AnnotatedVideo(annotate_to, fps) if annotate_to is not None else None
            with video or contextlib.nullcontext():
                for frame in follow(capture, faces_of, fps, check=check):
                    size = frame.rgb.shape[1], frame.rgb.shape[0]
                    if rows is not None:
                        rows += face_rows(name, frame.faces, frame.index)
                    frames.append({"frame": frame.index,
                                   "faces": [f.as_dict() for f in frame.faces]})
                    if video is not None:
                        video.write(draw(frame.rgb, frame.faces))
            if not frames:
                raise RequestError(400, f"{name}: not a video OpenCV can read, or no frames")
        finally:
            capture.release()
        return {"file": name, "width": size[0], "height": size[1], "fps": round(fps, 3),
                "frames": frames, "seconds": round(sum(spent), 4)}


def _too_slow(limits: Limits) -> RequestError:
    return RequestError(504, f"took longer than the limit of {limits.timeout_s:g} s")
