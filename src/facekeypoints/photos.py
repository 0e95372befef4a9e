"""Whole photographs: read them as a person sees them, find faces, frame each face the way the
training faces are framed, predict, and map the keypoints back to the photo's own pixels."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from .errors import UserError
from .keypoints import IMAGE_SIZE, KEYPOINTS, MEAN_SHAPE

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm",
                  ".ppm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
MAX_PIXELS = 400_000_000  # larger than any camera; protects memory from a decompression bomb
DETECT_MAX_SIDE = 1600  # faces are found on a copy no larger than this, then mapped back


class PhotoError(UserError):
    """A photo that cannot be used; reported, and the rest of a batch goes on."""


class PhotoTooLarge(PhotoError):
    """A photo over the pixel limit, refused before its pixels are decoded."""


# ----------------------------------------------------------------------------- reading


def read_photo(path: str | Path) -> np.ndarray:
    """8-bit RGB pixels as displayed: EXIF rotation applied; 16-bit, grey, RGBA, CMYK converted."""
    path = Path(path)
    if not path.is_file():
        raise PhotoError(f"{path}: no such file")
    return decode_photo(path, str(path))


def decode_photo(source: str | Path | BinaryIO, name: str,
                 max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """`read_photo` for a file or an open binary stream (an upload), with a pixel limit that is
    checked from the header, before any pixels are decoded; errors name the photo `name`."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = max(MAX_PIXELS, max_pixels)  # Pillow's own guard stays a backstop
    try:
        with Image.open(source) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise PhotoTooLarge(f"{name}: image is {width}x{height} = {width * height:,} "
                                    f"pixels; the limit is {max_pixels:,}")
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb8(image)
    except UnidentifiedImageError:
        raise PhotoError(f"{name}: not an image file (or an image format Pillow cannot read)") \
            from None
    except Image.DecompressionBombError:
        raise PhotoError(f"{name}: image is larger than {MAX_PIXELS:,} pixels") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise PhotoError(f"{name}: unreadable or truncated image ({e})") from None


def _to_rgb8(image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if pixels.max() > 255 else 255.0
        grey = np.clip(pixels / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        top = pixels.max() if pixels.max() > 1 else 1.0
        grey = np.clip(pixels / top * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        from PIL import Image

        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return np.asarray(image.convert("RGB"))


def expand_inputs(inputs: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Files and folders -> the files to process (folders: photos and videos, sorted), problems."""
    files, problems = [], []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file()
                           and p.suffix.lower() in PHOTO_SUFFIXES | VIDEO_SUFFIXES)
            if not found:
                problems.append(f"{item}: folder holds no photos or videos")
            files += found
        elif item.exists():
            files.append(item)
        else:
            problems.append(f"{item}: no such file or folder")
    return files, problems


# ----------------------------------------------------------------------------- finding faces


@dataclass
class Box:
    left: float
    top: float
    width: float
    height: float
    score: float

    def scaled(self, factor: float) -> Box:
        return Box(self.left * factor, self.top * factor, self.width * factor,
                   self.height * factor, self.score)


class HaarDetector:
    """OpenCV's bundled frontal-face cascade: installs with opencv-python, no model download."""

    name = "haar"

    def __init__(self) -> None:
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise UserError(f"OpenCV's face cascade is missing ({path}); reinstall "
                            "opencv-python-headless<5")

    def __call__(self, grey: np.ndarray) -> list[Box]:
        min_side = max(20, int(min(grey.shape) * 0.05))
        boxes, _, weights = self.cascade.detectMultiScale3(
            grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side),
            outputRejectLevels=True)
        return [Box(*map(float, b), float(w)) for b, w in zip(boxes, np.ravel(weights),
                                                              strict=True)]


TIGHT_PHOTO_SIDE = 300  # photos this small may be a face cropped tight, edges cutting it


class HogDetector:
    """dlib's built-in HOG + linear SVM frontal-face detector (pip install dlib-bin). Where it
    finds no face at all, OpenCV's cascade looks too (`fallback`): on the youtube photos it
    finds 19 of the 20 faces HOG misses (docs/photos.md); its boxes come back re-expressed as
    the HOG box that frames the face the same way."""

    name = "hog"

    def __init__(self, upsample: int = 1, fallback: bool = True) -> None:
        try:
            import dlib
        except ImportError:
            raise UserError("the hog detector needs dlib: pip install dlib-bin") from None
        self.detector, self.upsample = dlib.get_frontal_face_detector(), upsample
        self.fallback = HaarDetector() if fallback else None

    def __call__(self, grey: np.ndarray) -> list[Box]:
        upsample = self.upsample if max(grey.shape) <= 800 else 0
        rects, scores, _ = self.detector.run(grey, upsample, 0.0)
        boxes = [Box(r.left(), r.top(), r.width(), r.height(), float(s))
                 for r, s in zip(rects, scores, strict=True)]
        if boxes or self.fallback is None:
            return boxes
        return [reframe_box(b, FRAMING["haar"], FRAMING["hog"]) for b in self.fallback(grey)]


def reframe_box(box: Box, framing: Framing, target: Framing) -> Box:
    """The box that `target` crops exactly as `framing` crops `box` (same side, same centre)."""
    width = box.width * framing.scale / target.scale
    cx = box.left + box.width / 2 + framing.dx * box.width - target.dx * width
    cy = box.top + box.height / 2 + framing.dy * box.width - target.dy * width
    return Box(cx - width / 2, cy - width / 2, width, width, 0.0)


DETECTORS = {"haar": HaarDetector, "hog": HogDetector}


def make_detector(name: str):
    if name not in DETECTORS:
        raise UserError(f"--detector {name}: expected one of {', '.join(DETECTORS)}")
    return DETECTORS[name]()


def find_faces(detector, grey: np.ndarray) -> list[Box]:
    """Detect on a copy no larger than DETECT_MAX_SIDE, boxes mapped back to full size. A small
    photo where nothing is found may be a face cropped tight, its edges cutting it: it gets a
    margin of half its size and a second look (the last youtube face, docs/photos.md)."""
    factor = min(1.0, DETECT_MAX_SIDE / max(grey.shape))
    small = grey if factor == 1.0 else cv2.resize(grey, None, fx=factor, fy=factor,
                                                  interpolation=cv2.INTER_AREA)
    boxes = [b.scaled(1 / factor) for b in detector(small)]
    if boxes or max(grey.shape) > TIGHT_PHOTO_SIDE:
        return boxes
    pad = max(grey.shape) // 2
    padded = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return [Box(b.left - pad, b.top - pad, b.width, b.height, b.score)
            for b in detector(padded)]


# ----------------------------------------------------------------------------- framing


@dataclass(frozen=True)
class Framing:
    """The square crop around a detector box that matches how training faces are framed:
    side = scale * box width, centred at box centre + (dx, dy) * box width."""

    scale: float
    dx: float
    dy: float


# Measured on ../shared/data/photos (bench/framing.py): the median ideal crop per detector.
FRAMING = {"haar": Framing(1.037, 0.012, 0.006), "hog": Framing(1.141, 0.023, -0.059)}
NAIVE = Framing(1.0, 0.0, 0.0)


def crop_transform(box: Box, framing: Framing) -> np.ndarray:
    """2x3 affine from photo pixels to the 96x96 crop's pixels (pixel centres at integers)."""
    side = framing.scale * box.width
    cx = box.left + box.width / 2 + framing.dx * box.width
    cy = box.top + box.height / 2 + framing.dy * box.width
    s = IMAGE_SIZE / side
    # Photo pixel centre p maps to crop coordinate (p + 0.5 - (c - side/2)) * s - 0.5.
    tx = (0.5 - (cx - side / 2)) * s - 0.5
    ty = (0.5 - (cy - side / 2)) * s - 0.5
    return np.array([[s, 0.0, tx], [0.0, s, ty]])


def align_transform(points: np.ndarray, shape: np.ndarray = MEAN_SHAPE,
                    upright: bool = False) -> np.ndarray:
    """2x3 affine that puts photo keypoints (15, 2) closest, in least squares, to `shape` in a
    96x96 crop: scale and shift only, as the training faces were framed, or with `upright` also
    the rotation (a similarity), so that a face that rolls is cropped upright."""
    p, q = points - points.mean(0), shape - shape.mean(0)
    if upright:  # as complex numbers: the a minimising |a p - q|^2 is a rotation and a scale
        zp, zq = p[:, 0] + 1j * p[:, 1], q[:, 0] + 1j * q[:, 1]
        a = complex((np.conj(zp) * zq).sum() / (np.abs(zp) ** 2).sum())
    else:
        a = complex(float((p * q).sum() / (p * p).sum()), 0.0)
    linear = np.array([[a.real, -a.imag], [a.imag, a.real]])
    t = shape.mean(0) - linear @ points.mean(0)
    return np.hstack([linear, t[:, None]])


def crop_scale(matrix: np.ndarray) -> float:
    """Crop pixels per photo pixel of a similarity."""
    return float(np.hypot(matrix[0, 0], matrix[1, 0]))


def crop_face(grey: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The 96x96 face in [0, 1], area-averaged when shrinking, edges replicated."""
    s = crop_scale(matrix)
    if s < 0.5:  # shrink in steps, so the crop is averaged, not aliased
        pre = max(1, int(1 / s) // 2)
        small = cv2.resize(grey, None, fx=1 / pre, fy=1 / pre, interpolation=cv2.INTER_AREA)
        matrix = matrix @ np.array([[pre, 0, (pre - 1) / 2], [0, pre, (pre - 1) / 2], [0, 0, 1]])
        grey = small
    crop = cv2.warpAffine(grey, matrix, (IMAGE_SIZE, IMAGE_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return crop.astype(np.float32) / 255.0


def to_photo(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Crop coordinates (N, 2) back to photo pixels."""
    inverse = cv2.invertAffineTransform(matrix)
    return points @ inverse[:, :2].T + inverse[:, 2]


# ----------------------------------------------------------------------------- the pipeline


@dataclass
class Face:
    box: Box
    keypoints: np.ndarray  # (15, 2) photo pixels, in KEYPOINTS order

    def as_dict(self) -> dict:
        return {"box": {"left": round(self.box.left, 1), "top": round(self.box.top, 1),
                        "width": round(self.box.width, 1), "height": round(self.box.height, 1)},
                "score": round(self.box.score, 4),
                "keypoints": {k: [round(float(x), 2), round(float(y), 2)]
                              for k, (x, y) in zip(KEYPOINTS, self.keypoints, strict=True)}}


@dataclass
class PhotoResult:
    file: str
    width: int
    height: int
    faces: list[Face] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


class FacePipeline:
    """Detector + framing + keypoint model, applied to RGB frames."""

    def __init__(self, model, detector_name: str = "hog", framing: Framing | None = None,
                 refine: int = 2, upright: bool = True):
        # a model with a head of its own for photo crops (the face mesh) uses it here
        self.model = model.for_photos() if hasattr(model, "for_photos") else model
        self.detector = make_detector(detector_name)
        self.framing = framing or FRAMING[detector_name]
        self.refine = refine  # passes that re-frame each face on its own predicted keypoints
        self.upright = upright  # re-framing also turns a face that rolls upright

    def faces_in(self, rgb: np.ndarray, boxes: list[Box] | None = None) -> list[Face]:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        boxes = find_faces(self.detector, grey) if boxes is None else boxes
        if not boxes:
            return []
        matrices = [crop_transform(b, self.framing) for b in boxes]
        points = self.predict_at(grey, matrices)
        for _ in range(self.refine):
            matrices = [align_transform(p, upright=self.upright) for p in points]
            refined = self.predict_at(grey, matrices)
            points = [new if _plausible(new, box, m) else old
                      for new, old, box, m in zip(refined, points, boxes, matrices, strict=True)]
        return [Face(b, p) for b, p in zip(boxes, points, strict=True)]

    def predict_at(self, grey: np.ndarray, matrices: list[np.ndarray]) -> list[np.ndarray]:
        crops = np.stack([crop_face(grey, m) for m in matrices])[..., None]
        pred = self.model.predict(crops)  # (n, 30) crop pixels
        return [to_photo(p.reshape(-1, 2), m) for p, m in zip(pred, matrices, strict=True)]

    def photo(self, path: Path) -> PhotoResult:
        start = time.perf_counter()
        try:
            rgb = read_photo(path)
        except PhotoError as e:
            return PhotoResult(str(path), 0, 0, error=str(e))
        faces = self.faces_in(rgb)
        return PhotoResult(str(path), rgb.shape[1], rgb.shape[0], faces,
                           seconds=time.perf_counter() - start)


def _plausible(points: np.ndarray, box: Box, matrix: np.ndarray) -> bool:
    """A re-framed face must stay in its detector box at a size near the box's, else re-framing
    has drifted (a poor first guess) and the earlier keypoints are kept."""
    cx, cy = points.mean(axis=0)
    inside = box.left <= cx <= box.left + box.width and box.top <= cy <= box.top + box.height
    side = IMAGE_SIZE / crop_scale(matrix)
    return inside and 0.6 * box.width <= side <= 2.0 * box.width


def draw(rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
    """The photo with each face's box and keypoints drawn, sized to the face."""
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    for face in faces:
        b = face.box
        thick = max(1, int(round(b.width / 80)))
        cv2.rectangle(out, (int(b.left), int(b.top)), (int(b.left + b.width),
                                                       int(b.top + b.height)), (255, 160, 0),
                      thick)
        radius = max(1, int(math.ceil(b.width / 60)))
        for x, y in face.keypoints:
            cv2.circle(out, (int(round(x)), int(round(y))), radius, (0, 0, 255), -1, cv2.LINE_AA)
    return out
