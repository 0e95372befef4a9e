"""What `serve` does for a request, free of any web framework: the HTTP app (`app`) and the
page (`page`) both call it. The model, the detector and the limits live here, and so does the
deadline of each request: work whose client has been told it timed out stops at the next face
search instead of holding the model."""

from __future__ import annotations

import contextlib
import ctypes
import io
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath
from typing import BinaryIO

import cv2
import numpy as np

from ..photos.landmarker import Landmarker
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
    video_seconds: float = 60.0  # counted in frames decoded, at no more than MAX_VIDEO_FPS
    timeout_s: float = 120.0  # waiting for the model included
    memory_mb: float = 1536.0  # the pixels of all the work in flight together
    read_timeout_s: float = 60.0  # a client's time to send a whole request, headers and body

    @property
    def upload_bytes(self) -> int:
        return int(self.upload_mb * 1024 * 1024)

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_mb * 1024 * 1024)


MAX_VIDEO_FPS = 30.0  # a video's length is its frames at this rate, when its header claims more
# Bytes a request holds per pixel of its photo or video frame, measured (docs/serve.md): the
# decoder's buffer and the 8-bit RGB array (about 10), the drawn copy and its colour conversion
# on the page (6 more); plus what any request holds besides its pixels.
BYTES_PER_PIXEL = 16
BYTES_PER_REQUEST = 8 * 1024 * 1024
QUEUE_WAIT_S = 30.0  # the longest a request waits for room in the memory budget
MAX_WAITING = 32  # requests waiting for room at once; more are refused with a 503
RETRY_AFTER_S = 5


class RequestError(Exception):
    """A request the server refuses: an HTTP status and one line saying why."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def request_bytes(pixels: int) -> int:
    """What a request that decodes a picture of `pixels` holds in memory at its peak."""
    return pixels * BYTES_PER_PIXEL + BYTES_PER_REQUEST


def release_freed_memory() -> None:
    """Hand the memory that requests freed back to the system: glibc keeps freed heap pages
    for reuse, so without this a server that served a burst of large photos stays that large.
    A no-op where the C library is not glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class MemoryBudget:
    """The bytes that the requests in flight may hold together, each request's share estimated
    from its photo's header before a pixel is decoded. A request that does not fit waits for
    room (at most QUEUE_WAIT_S, and never past its deadline); when MAX_WAITING already wait, or
    the wait runs out, it is refused with a 503 and Retry-After. The process so stays under
    its idle size plus the budget, whatever arrives at once."""

    def __init__(self, limit: int):
        self.limit, self.used, self.waiting = limit, 0, 0
        self._room = threading.Condition()

    @contextlib.contextmanager
    def hold(self, nbytes: int, name: str, deadline: float | None = None,
             wait_s: float = QUEUE_WAIT_S) -> Iterator[None]:
        if nbytes > self.limit:
            raise RequestError(413, f"{name}: needs about {nbytes / 2**20:,.0f} MB to process; "
                               f"the server's memory budget is {self.limit / 2**20:,.0f} MB")
        until = time.monotonic() + wait_s
        until = until if deadline is None else min(until, deadline)
        with self._room:
            if self.used + nbytes > self.limit:
                if self.waiting >= MAX_WAITING:
                    raise _busy()
                self.waiting += 1
                try:
                    while self.used + nbytes > self.limit:
                        left = until - time.monotonic()
                        if left <= 0:
                            raise _busy()
                        self._room.wait(left)
                finally:
                    self.waiting -= 1
            self.used += nbytes
        try:
            yield
        finally:
            with self._room:
                self.used -= nbytes
                idle = self.used == 0
                self._room.notify_all()
            if idle:
                release_freed_memory()


def _busy() -> RequestError:
    return RequestError(503, f"the server is busy with other large pictures; try again in "
                        f"{RETRY_AFTER_S} s", {"Retry-After": str(RETRY_AFTER_S)})


def upload_name(filename: str | None, fallback: str) -> str:
    """The uploaded file's own name, for the records only: never used as a path."""
    name = PurePath((filename or "").replace("\\", "/")).name
    return name[:200] or fallback


class KeypointService:
    """The landmarker (model and detector) and the limits, shared by the API and the page. One
    request uses the model at a time (Keras models and the detector are not made for several
    threads)."""

    def __init__(self, model, detector: str = "blazeface", limits: Limits | None = None):
        from ..inference.loading import BUILTIN_MODELS

        self.landmarker = Landmarker(model, detector=detector)  # None: the built-in model
        self.predictor = self.landmarker.model
        self.detector, self.limits = detector, limits or Limits()
        # what the user named (a built-in name, or their run or file), not the predictor's
        # internal name: the built-in model would otherwise show as "mesh"
        self.model_name = "builtin" if model is None else str(model)
        self.builtin = self.model_name in BUILTIN_MODELS and not Path(self.model_name).exists()
        # no path of this machine goes out (health is public): a built-in model has none to
        # show, a user's model its file or folder name
        self.model_path = None if self.builtin else Path(str(getattr(model, "path", model))).name
        largest = request_bytes(self.limits.max_pixels)
        if largest > self.limits.memory_bytes:
            from ..errors import UserError

            raise UserError(f"--max-pixels {self.limits.max_pixels:,} needs up to "
                            f"{largest / 2**20:,.0f} MB for one photo, more than --memory-mb "
                            f"{self.limits.memory_mb:g}: raise --memory-mb or lower --max-pixels")
        self.budget = MemoryBudget(self.limits.memory_bytes)
        self._lock = threading.Lock()

    @property
    def pipeline(self) -> FacePipeline:
        return self.landmarker.pipeline

    @property
    def model_kind(self) -> str:
        """"built-in" for a model shipped in the package, else the kind of model loaded."""
        return "built-in" if self.builtin else type(self.predictor).__name__

    def deadline(self) -> float:
        """When a request that starts now must be done, on `time.monotonic`'s clock."""
        return time.monotonic() + self.limits.timeout_s

    def health(self) -> dict:
        from .. import __version__

        return {"status": "ok", "version": __version__, "model": self.model_name,
                "model_path": self.model_path, "model_kind": self.model_kind,
                "detector": self.detector, "scheme": self.predictor.scheme.name,
                "keypoints": self.predictor.keypoints,
                "limits": asdict(self.limits)}

    @contextlib.contextmanager
    def admission(self, name: str, deadline: float | None = None,
                  wait_s: float = QUEUE_WAIT_S) -> Iterator[Callable[[int, int, str], None]]:
        """An `admit(width, height, mode)` for `decode_photo`: it takes the picture's share of
        the memory budget (waiting for room, or refusing) before any pixel is decoded; the
        share is given back when the request's work is done."""
        with contextlib.ExitStack() as held:
            def admit(width: int, height: int, mode: str = "") -> None:
                held.enter_context(self.budget.hold(request_bytes(width * height), name,
                                                    deadline, wait_s))
            yield admit

    def decode(self, source: bytes | BinaryIO | str | Path, name: str,
               admit: Callable[[int, int, str], None] | None = None) -> np.ndarray:
        """The one way every route and page handler reads a picture: pixels checked from the
        header, then room in the memory budget, then decoding; 4xx for anything wrong."""
        if isinstance(source, bytes):
            if not source:
                raise RequestError(400, f"{name}: empty upload (0 bytes)")
            source = io.BytesIO(source)
        try:
            return decode_photo(source, name, self.limits.max_pixels, admit)
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
            faces = tracker(rgb, t) if tracker is not None else list(self.landmarker.detect(rgb))
            return faces, time.perf_counter() - start
        finally:
            self._lock.release()

    def photo(self, source: bytes | BinaryIO, name: str, deadline: float | None = None) -> dict:
        """One photo's record, in the format of `detect`'s keypoints.json."""
        with self.admission(name, deadline) as admit:
            rgb = self.decode(source, name, admit)
            faces, seconds = self.faces(rgb, deadline=deadline)
            return photo_record(name, rgb, faces, seconds)

    def video(self, source: bytes | BinaryIO, name: str, deadline: float | None = None) -> dict:
        """Every frame's faces, from an uploaded video (bytes, or the upload's spooled file)."""
        if isinstance(source, bytes):
            source = io.BytesIO(source)
        suffix = PurePath(name).suffix.lower()
        suffix = suffix if suffix in VIDEO_SUFFIXES else ".mp4"
        with tempfile.TemporaryDirectory(prefix="facekeypoints-") as folder:
            path = Path(folder) / f"upload{suffix}"  # our own name, never the client's
            with path.open("wb") as out:
                shutil.copyfileobj(source, out)
            if path.stat().st_size == 0:
                raise RequestError(400, f"{name}: empty upload (0 bytes)")
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
            # The length is counted in frames, the work they make, at the header's rate but
            # never above MAX_VIDEO_FPS: a header claiming 3,000 frames a second must not make
            # 3,000 frames "one second". A header may understate the count; decoding stops at
            # the limit whatever it said.
            rate = min(fps, MAX_VIDEO_FPS)
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            limit, max_pixels = self.limits.video_seconds, self.limits.max_pixels
            max_frames = int(limit * rate) + 1  # one frame of slack for rounding
            too_long = (f"{name}: video is too long; the limit is {limit:g} s (at most "
                        f"{max_frames:,} frames: {limit:g} s at {rate:g} frames a second)")
            if count > max_frames:
                raise RequestError(413, too_long)
            width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
            height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
            if width * height > max_pixels:  # from the header, before a frame is decoded
                raise RequestError(413, f"{name}: frames of {width}x{height} pixels; the "
                                   f"limit is {max_pixels:,}")
            frames, size, spent = [], (0, 0), []  # spent: seconds with the model, not waiting
            with contextlib.ExitStack() as held:
                def take_budget(pixels: int) -> None:
                    """The video's share of the memory budget, once, for all its frames."""
                    if not held_pixels:
                        held.enter_context(self.budget.hold(request_bytes(pixels), name,
                                                            deadline))
                        held_pixels.append(pixels)

                held_pixels: list[int] = []
                if width * height:
                    take_budget(width * height)

                def check(index: int, rgb: np.ndarray) -> None:
                    height, width = rgb.shape[:2]
                    if width * height > max_pixels:
                        raise RequestError(413, f"{name}: frames of {width}x{height} pixels; "
                                           f"the limit is {max_pixels:,}")
                    if index >= max_frames:
                        raise RequestError(413, too_long)
                    take_budget(width * height)  # a header without the size

                tracker = self.landmarker.tracker()  # found once, then followed and smoothed

                def faces_of(rgb: np.ndarray, t: float) -> list[Face]:
                    faces, seconds = self.faces(rgb, tracker, t, deadline)
                    spent.append(seconds)
                    return faces

                video = AnnotatedVideo(annotate_to, fps) if annotate_to is not None else None
                with video or contextlib.nullcontext():
                    for frame in follow(capture, faces_of, fps, check=check):
                        size = frame.rgb.shape[1], frame.rgb.shape[0]
                        if rows is not None:
                            rows += face_rows(name, frame.faces, frame.index, frame.time)
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
