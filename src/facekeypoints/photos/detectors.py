"""Face detectors: BlazeFace (the default; blazeface.py), dlib's HOG (with OpenCV's cascade where
it finds none) and the cascade alone, and the search of a whole photo, shrunk where it is large,
with a second look at small ones. Each takes a grey or an RGB image and converts as it needs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError
from ..extras import missing
from ..geometry import Box
from .blazeface import BlazeFace
from .framing import FRAMING, reframe_box

DETECT_MAX_SIDE = 1600  # faces are found on a copy no larger than this, then mapped back


class HaarDetector:
    """OpenCV's bundled frontal-face cascade: installs with opencv-python, no model download."""

    name = "haar"

    def __init__(self) -> None:
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise UserError(f"OpenCV's face cascade is missing ({path}); reinstall "
                            "opencv-python-headless<5")

    def __call__(self, image: np.ndarray) -> list[Box]:
        grey = _grey(image)
        min_side = max(20, int(min(grey.shape) * 0.05))
        boxes, _, weights = self.cascade.detectMultiScale3(
            grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side),
            outputRejectLevels=True)
        return [Box(*map(float, b), float(w)) for b, w in zip(boxes, np.ravel(weights),
                                                              strict=True)]


TIGHT_PHOTO_SIDE = 300  # photos this small may be a face cropped tight, edges cutting it


class HogDetector:
    """dlib's built-in HOG + linear SVM frontal-face detector (facekeypoints[hog]). Where it
    finds no face at all, OpenCV's cascade looks too (`fallback`): on the youtube photos it
    finds 19 of the 20 faces HOG misses (docs/photos.md); its boxes come back re-expressed as
    the HOG box that frames the face the same way."""

    name = "hog"

    def __init__(self, upsample: int = 1, fallback: bool = True) -> None:
        try:
            import dlib
        except ImportError:
            raise missing("dlib", "--detector hog") from None
        self.detector, self.upsample = dlib.get_frontal_face_detector(), upsample
        self.fallback = HaarDetector() if fallback else None

    def __call__(self, image: np.ndarray) -> list[Box]:
        grey = _grey(image)
        upsample = self.upsample if max(grey.shape) <= 800 else 0
        rects, scores, _ = self.detector.run(grey, upsample, 0.0)
        boxes = [Box(r.left(), r.top(), r.width(), r.height(), float(s))
                 for r, s in zip(rects, scores, strict=True)]
        if boxes or self.fallback is None:
            return boxes
        return [reframe_box(b, FRAMING["haar"], FRAMING["hog"]) for b in self.fallback(grey)]


def _grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


DETECTORS = {"blazeface": BlazeFace, "hog": HogDetector, "haar": HaarDetector}


def make_detector(name: str):
    if name not in DETECTORS:
        raise UserError(f"--detector {name}: expected one of {', '.join(DETECTORS)}")
    return DETECTORS[name]()


def find_faces(detector, image: np.ndarray) -> list[Box]:
    """Detect on a copy no larger than DETECT_MAX_SIDE, boxes mapped back to full size. A small
    photo where nothing is found may be a face cropped tight, its edges cutting it: it gets a
    margin of half its size and a second look (the last youtube face, docs/photos.md)."""
    height, width = image.shape[:2]
    longer = max(height, width)
    factor = min(1.0, DETECT_MAX_SIDE / longer)
    # a side never shrinks below a pixel (a 1 x 4000 strip stays a strip, holding no face)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = image if factor == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    boxes = [b.scaled(1 / factor) for b in detector(small)]
    if boxes or longer > TIGHT_PHOTO_SIDE:
        return boxes
    pad = longer // 2
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return [b.moved(-pad, -pad) for b in detector(padded)]
