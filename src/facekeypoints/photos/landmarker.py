"""`Landmarker`: the one object that finds faces and their keypoints, for Python users and for
everything in the package that does (`fk.detect`, the `detect` job in this process and on Ray,
`serve`). It loads the model and the detector once and takes photos in whatever form a person
holds them: a path, a PIL image, an RGB or grey uint8 array, or OpenCV's BGR with
`color="bgr"`; `track` follows faces through video or camera frames by their timestamps.

Bad input is one line, a `LandmarkerInputError` (a `ValueError`, and a `PhotoError` so that
`detect` records it against its file), never a TypeError from inside a library."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..geometry import Box
from .detectors import DETECTORS
from .pipeline import Face, FacePipeline
from .reading import PhotoError, read_photo
from .tracking import FaceTracker

COLORS = ("rgb", "bgr")


class LandmarkerInputError(PhotoError, ValueError):
    """An image, box, option or timestamp the landmarker cannot take, said in one line."""


@dataclass(frozen=True, eq=False)
class LandmarkerResult(Sequence[Face]):
    """The faces of one photo or frame: iterable as `Face`s (each with its `box`, `keypoints`
    and `names`), and as arrays over all of them."""

    faces: tuple[Face, ...]
    width: int
    height: int
    names: tuple[str, ...]  # the model's points, in the order of `points`' second axis
    file: str = ""  # the photo's path, where it was given one
    # whether the model gives each face an uncertainty (a calibration) and a pose (the mesh):
    # with no face, the arrays are empty where it does and None where it does not
    uncertain: bool = True
    posed: bool = True

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index):  # a Sequence's: one face, or a list of them for a slice
        return self.faces[index]

    def __iter__(self) -> Iterator[Face]:
        return iter(self.faces)

    @property
    def points(self) -> np.ndarray:
        """(faces, points, 2): x, y in the image's pixels."""
        if not self.faces:
            return np.zeros((0, len(self.names), 2))
        return np.stack([np.asarray(f.keypoints, np.float64) for f in self.faces])

    @property
    def uncertainty(self) -> np.ndarray | None:
        """(faces, points): how far, in pixels, each keypoint may be from its true place (about
        68% of true points lie within it; docs/uncertainty.md). None where the model has no
        calibrated uncertainty (a run of your own, the mesh's 468 points)."""
        if not self.uncertain or any(f.uncertainty is None for f in self.faces):
            return None
        if not self.faces:
            return np.zeros((0, len(self.names)))
        return np.stack([np.asarray(f.uncertainty, np.float64) for f in self.faces])

    @property
    def poses(self) -> np.ndarray | None:
        """(faces, 3): each face's yaw, pitch and roll in degrees (mesh/pose.py says the
        signs), or None where the model gives no pose (a CNN run: not mesh-based)."""
        if not self.posed or any(f.pose is None for f in self.faces):
            return None
        return np.array([f.pose for f in self.faces], np.float64).reshape(-1, 3)

    @property
    def boxes(self) -> np.ndarray:
        """(faces, 4): left, top, width, height in pixels."""
        return np.array([[f.box.left, f.box.top, f.box.width, f.box.height]
                         for f in self.faces], np.float64).reshape(-1, 4)

    @property
    def scores(self) -> np.ndarray:
        """(faces,): the detector's score of each face (1.0 for a box given by hand)."""
        return np.array([f.box.score for f in self.faces], np.float64)

    def as_dict(self, file: str | None = None) -> dict:
        """The record `detect` writes into keypoints.json for this photo (`file`: the name it
        goes by, default the path it was read from)."""
        return {"file": self.file if file is None else file, "width": self.width,
                "height": self.height, "faces": [f.as_dict() for f in self.faces]}


class Landmarker:
    """Faces and their keypoints, with the model and the detector loaded once.

    `model`: None for the built-in model, a built-in name ("builtin68", "mesh468", "mesh478"), a
    run folder, a .keras or .onnx file, or a loaded model (an exported run loads from its ONNX
    file). `detector`: blazeface, hog or haar; `min_score`: drop faces the detector scores lower
    (BlazeFace: 0 to 1, finds from 0.5); `max_faces`: at most this many faces an image, the best
    scored; `fast`: one pass per face, no mirror image (about 0.7 of the time); `smooth`: `track`
    smooths keypoints over time (One Euro filter). One thread uses a landmarker at a time
    (`serve` holds a lock around its one); make one per thread to run several.

    >>> landmarker = fk.Landmarker(max_faces=2)
    >>> result = landmarker.detect("../shared/data/photos/dlib/2007_007763.jpg")
    >>> result.points.shape, result.names[:2]
    ((2, 15, 2), ('left_eye_center', 'right_eye_center'))
    >>> sorted(result.as_dict())
    ['faces', 'file', 'height', 'width']
    """

    def __init__(self, model: Any = None, *, detector: str = "blazeface",
                 min_score: float | None = None, max_faces: int | None = None,
                 fast: bool = False, smooth: bool = True):
        from ..inference.loading import load

        _check_options(detector, min_score, max_faces, fast, smooth)
        predictor = load(model, prefer_onnx=True)
        self._use(FacePipeline(predictor, detector, fast=fast, min_score=min_score,
                               max_faces=max_faces), smooth)

    @classmethod
    def of(cls, source: Landmarker | FacePipeline, smooth: bool = True) -> Landmarker:
        """A landmarker as it is, or one around a `FacePipeline` built by hand (its settings)."""
        if isinstance(source, Landmarker):
            return source
        landmarker = cls.__new__(cls)
        landmarker._use(source, smooth)
        return landmarker

    def _use(self, pipeline: FacePipeline, smooth: bool) -> None:
        self.pipeline, self.smooth = pipeline, smooth
        self._tracker: FaceTracker | None = None
        self._last_ms: float | None = None

    def __repr__(self) -> str:
        return (f"Landmarker({self.model.name!r}, detector={self.detector!r}, "
                f"min_score={self.min_score}, max_faces={self.max_faces}, fast={self.fast}, "
                f"smooth={self.smooth})")

    # the settings, as `detect`'s job records them
    @property
    def model(self):
        """The loaded model (a Predictor)."""
        return self.pipeline.model

    @property
    def names(self) -> tuple[str, ...]:
        return self.pipeline.names

    @property
    def detector(self) -> str:
        return self.pipeline.detector_name

    @property
    def fast(self) -> bool:
        return self.pipeline.fast

    @property
    def min_score(self) -> float | None:
        return self.pipeline.min_score

    @property
    def max_faces(self) -> int | None:
        return self.pipeline.max_faces

    def detect(self, image: Any, boxes: Any = None, color: str = "rgb") -> LandmarkerResult:
        """The faces in one photo: a path, a PIL image, an (H, W, 3) RGB or (H, W) grey uint8
        array, or OpenCV's BGR with `color="bgr"`. A path is read as a person sees it (EXIF
        rotation applied); an array or a PIL image as its pixels stand. `boxes`: faces given
        as (left, top, width, height) in pixels (or a result's `.boxes`, or its faces' `.box`), as
        the detector's would frame them, instead of detecting; a model that scores faces (the
        built-in ones) still drops a box it sees no face in."""
        file = str(image) if isinstance(image, str | Path) else ""
        rgb = read_photo(image) if file else to_rgb(image, color)
        given = None if boxes is None else _boxes(boxes, rgb.shape)
        return self._result(self.pipeline.faces_in(rgb, given), rgb, file)

    def track(self, frame: Any, timestamp_ms: float, color: str = "rgb") -> LandmarkerResult:
        """The faces in the next frame of a video or camera, at `timestamp_ms` (larger than the
        last frame's): found once, then followed from frame to frame (the detector runs again
        when a face is lost, and now and then for newcomers), smoothed over time unless
        `smooth=False`. `reset()` starts a new video."""
        rgb = to_rgb(frame, color)
        if not _is_number(timestamp_ms) or not math.isfinite(timestamp_ms):
            raise LandmarkerInputError(f"timestamp_ms {timestamp_ms!r}: expected a finite "
                                       "number of milliseconds")
        if self._last_ms is not None and timestamp_ms <= self._last_ms:
            raise LandmarkerInputError(
                f"timestamp_ms {timestamp_ms:g} is not after the last frame's "
                f"({self._last_ms:g}); timestamps must increase (reset() starts a new video)")
        if self._tracker is None:
            self._tracker = self.tracker()
        faces = self._tracker(rgb, float(timestamp_ms) / 1000.0)
        self._last_ms = float(timestamp_ms)
        return self._result(faces, rgb)

    def reset(self) -> None:
        """Forget the faces `track` follows: the next frame begins a new video."""
        self._tracker, self._last_ms = None, None

    def tracker(self, smooth: bool | None = None) -> FaceTracker:
        """A new FaceTracker with this landmarker's model and settings, for a video of its own
        (`track` keeps one)."""
        return FaceTracker(self.pipeline, smooth=self.smooth if smooth is None else smooth)

    def _result(self, faces: list[Face], rgb: np.ndarray, file: str = "") -> LandmarkerResult:
        return LandmarkerResult(tuple(faces), int(rgb.shape[1]), int(rgb.shape[0]),
                                self.names, file, self.pipeline.calibration is not None,
                                bool(self.pipeline.model.gives_mesh))


def _check_options(detector: str, min_score: float | None, max_faces: int | None, fast: bool,
                   smooth: bool) -> None:
    if detector not in DETECTORS:
        raise LandmarkerInputError(f"detector {detector!r}: expected one of "
                                   f"{', '.join(DETECTORS)}")
    if min_score is not None and (not _is_number(min_score) or not 0 <= min_score <= 1):
        raise LandmarkerInputError(f"min_score {min_score!r}: expected a number from 0 to 1, "
                                   "or None")
    if max_faces is not None and (isinstance(max_faces, bool) or not isinstance(
            max_faces, int | np.integer) or max_faces < 1):
        raise LandmarkerInputError(f"max_faces {max_faces!r}: expected a whole number of 1 "
                                   "or more, or None")
    for name, value in (("fast", fast), ("smooth", smooth)):
        if not isinstance(value, bool):
            raise LandmarkerInputError(f"{name} {value!r}: expected True or False")


def _is_number(value: Any) -> bool:
    """A real number, NumPy's scalars among them (not True or False)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def to_rgb(image: Any, color: str = "rgb") -> np.ndarray:
    """8-bit RGB pixels of a PIL image or a uint8 array (grey, RGB, or BGR with `color="bgr"`),
    checked: anything else is one line saying what was expected."""
    if color not in COLORS:
        raise LandmarkerInputError(f"color {color!r}: expected 'rgb' or 'bgr' (OpenCV's "
                                   "frames are BGR)")
    if _is_pil(image):
        return _pil_rgb(image)
    if not isinstance(image, np.ndarray):
        raise LandmarkerInputError(f"image of type {type(image).__name__}: expected "
                                   + ("a PIL image or a numpy uint8 array (a video's frames "
                                      "are pixels, not files)" if isinstance(image, str | Path)
                                      else "a path, a PIL image or a numpy uint8 array"))
    shape = "x".join(map(str, image.shape))
    if image.dtype != np.uint8:
        raise LandmarkerInputError(
            f"image array of type {image.dtype} ({shape}): expected uint8 pixels, 0 to 255 "
            "(a float image in [0, 1]: (image * 255).round().astype(np.uint8))")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)) or 0 in image.shape:
        raise LandmarkerInputError(f"image array of shape ({', '.join(map(str, image.shape))})"
                                   ": expected (height, width, 3) colour or (height, width) "
                                   "grey, not empty")
    if image.ndim == 2:  # cvtColor: 0.1 ms a 640x480 frame, np.repeat 3 ms
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image[..., ::-1] if color == "bgr" else image)


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "mode")


def _pil_rgb(image) -> np.ndarray:
    """A PIL image as 8-bit RGB, as `read_photo` converts a file's (16-bit, grey, alpha on
    white, palette, CMYK); a mode with no such conversion is refused in one line."""
    from .reading import _decoder_errors, _to_rgb8

    name = f"PIL image ({image.mode}, {image.size[0]}x{image.size[1]})"
    if 0 in image.size:
        raise LandmarkerInputError(f"{name}: empty")
    with _decoder_errors(name):
        image.load()  # a lazily opened file's pixels; its decoder's failure is a PhotoError
    try:
        rgb = _to_rgb8(image)
    except (ValueError, OSError, TypeError):
        raise LandmarkerInputError(f"{name}: mode {image.mode} has no conversion to RGB; "
                                   "convert it first (image.convert('RGB'))") from None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise LandmarkerInputError(f"{name}: mode {image.mode} is not one of 8-bit RGB's; "
                                   "convert it first (image.convert('RGB'))")
    return rgb


def _boxes(boxes: Any, shape: tuple[int, ...]) -> list[Box]:
    """Faces given by hand, as (left, top, width, height) each, checked against the image."""
    if isinstance(boxes, Box):
        boxes = [boxes]
    if isinstance(boxes, Sequence) and boxes and all(isinstance(b, Box) for b in boxes):
        boxes = [(b.left, b.top, b.width, b.height) for b in boxes]  # a result's faces' boxes
    try:
        rows = np.asarray(boxes, np.float64)
    except (TypeError, ValueError):
        raise LandmarkerInputError("boxes: expected a list of (left, top, width, height), "
                                   "one per face") from None
    if rows.shape in ((0,), (0, 4)):
        return []
    if rows.ndim == 1 and rows.shape[0] == 4:
        rows = rows[None]
    if rows.ndim != 2 or rows.shape[1] != 4:
        raise LandmarkerInputError(f"boxes of shape {rows.shape}: expected (left, top, width, "
                                   "height) for each face, an (N, 4) list or array")
    height, width = shape[:2]
    found = []
    for i, (left, top, w, h) in enumerate(rows):
        given = f"boxes[{i}] ({', '.join(f'{v:g}' for v in rows[i])})"
        if not np.isfinite(rows[i]).all() or w <= 0 or h <= 0:
            raise LandmarkerInputError(f"{given}: expected finite (left, top, width, height) "
                                       "with width and height above 0")
        if left >= width or top >= height or left + w <= 0 or top + h <= 0:
            raise LandmarkerInputError(f"{given}: lies outside the {width}x{height} image")
        if max(w, h) > 4 * max(width, height):
            raise LandmarkerInputError(f"{given}: is over four times the {width}x{height} "
                                       "image; expected a face's box")
        found.append(Box(float(left), float(top), float(w), float(h), 1.0))
    return found
