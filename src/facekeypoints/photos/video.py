"""Videos, frame by frame: the one loop that `detect`, the webcam, the server and the page all
follow faces through, and the annotated copy each of them writes."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError
from ..files import publish
from ..quiet_import import stderr_silenced
from .pipeline import Face

# Codecs whose encoders OpenCV's wheels carry: VP8 in WebM, which browsers play (detect and the
# page draw videos so); MPEG-4 part 2, which they do not, for players that want .mp4.
CODECS = {".mp4": "mp4v", ".webm": "VP80"}


@dataclass
class Frame:
    index: int
    rgb: np.ndarray
    faces: list[Face]
    seconds: float  # spent finding this frame's faces
    time: float = 0.0  # seconds from the video's start (a live source: from its first frame)


def follow(capture, faces_of: Callable[[np.ndarray, float], list[Face]], fps: float,
           live: bool = False, max_frames: int | None = None,
           check: Callable[[int, np.ndarray], None] | None = None) -> Iterator[Frame]:
    """Each frame of an open `cv2.VideoCapture` with its faces, `faces_of(rgb, t)` (a
    FaceTracker, say) called with the frame's time: its place in the video, or for a `live`
    source the seconds since its first frame. `check(index, rgb)` may refuse a frame before
    its faces are found (a size or length limit) by raising."""
    index, began = 0, time.monotonic()
    while max_frames is None or index < max_frames:
        ok, bgr = capture.read()
        if not ok:
            return
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if check is not None:
            check(index, rgb)
        start = time.perf_counter()
        at = time.monotonic() - began if live else index / fps
        faces = faces_of(rgb, at)
        yield Frame(index, rgb, faces, time.perf_counter() - start, at)
        index += 1


class AnnotatedVideo:
    """A drawn copy of a video, written to a hidden file beside `path` and renamed to it when
    complete; a codec that cannot be opened is a one-line error, and a failed or interrupted
    copy leaves no file behind. Use it as a context manager."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = Path(path), fps
        if self.path.suffix not in CODECS:
            raise UserError(f"{self.path}: annotated videos are {' or '.join(CODECS)} files")
        self.tmp: Path | None = None  # made beside `path` when the first frame comes
        self.writer = None

    def write(self, bgr: np.ndarray) -> None:
        if self.writer is None:
            codec = CODECS[self.path.suffix]
            height, width = bgr.shape[:2]
            # a name of its own (two workers may draw into one folder), short enough for any
            # file system however long the video's name
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name[:64]}.",
                                           suffix=f".tmp{self.path.suffix}",
                                           dir=self.path.parent)
            except OSError as e:
                raise UserError(f"{self.path}: OpenCV cannot write a {codec} video there "
                                f"({e.strerror or e})") from None
            os.close(fd)
            self.tmp = Path(tmp)
            with stderr_silenced():  # FFmpeg notes that WebM files carry no codec tag
                self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*codec),
                                              self.fps, (width, height))
            if not self.writer.isOpened():
                self.writer = None
                self.tmp.unlink(missing_ok=True)
                raise UserError(f"{self.path}: OpenCV cannot write a {codec} video of "
                                f"{width}x{height} at {self.fps:g} fps here")
        self.writer.write(bgr)

    @property
    def started(self) -> bool:
        return self.writer is not None

    def close(self, keep: bool = True) -> bool:
        """Finish the file (or with `keep=False` throw it away); whether a video was written."""
        written = self.writer is not None and keep
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if written:
            publish(self.tmp, self.path)
        elif self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
        return written

    def __enter__(self) -> AnnotatedVideo:
        return self

    def __exit__(self, kind, error, trace) -> None:
        self.close(keep=kind is None)
