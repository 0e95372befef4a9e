"""Labelled photos framed for training exactly as `detect` frames faces: BlazeFace finds the
faces, each labelled face takes the find whose box holds its points' centre, and its crop is
the pipeline's first crop of that find (`first_transform`, BlazeFace's eyes and mouth on the
template). A face the detector misses is framed from its labels' box: the box drawn around it
(a COCO `bbox`) as detect frames a BlazeFace box, else its points' bounding box placed as that
of a detected face sits in its crop (LABELS, measured)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np

from ..data.labelled import Framed, LabelledFace, points_box
from ..errors import DataError
from .detectors import find_faces, make_detector
from .framing import FRAMING, Framing, crop_face, crop_transform, first_transform
from .reading import PhotoError, read_photo
from .scores import match_centres

DETECTOR = "blazeface"
# Where a detected face's crop sits around the bounding box of its iBUG-68 points: the median
# over the 487 shared youtube photos (bench/labelled_framing.py); a scheme with fewer points
# (Kaggle's 15 stop at the brows and lip) spans less of the face, and is framed tighter
LABELS = Framing(1.179, 0.004, -0.182)
MIN_BOX = 4.0  # px: a face's box narrower than this frames no face (one point, or points in a row)


@cache
def _detector():
    return make_detector(DETECTOR)


def frame_photo(image: Path, faces: list[LabelledFace]) -> list[Framed]:
    """Each face's crop as `detect` would cut it (its detector find), or from its labels' box
    where the detector found none for it."""
    try:
        rgb = read_photo(image)
    except PhotoError as e:
        raise DataError(image, str(e)) from None
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes = find_faces(_detector(), rgb)
    centres = [np.nanmean(f.points, axis=0) for f in faces]
    out = []
    for face, j in zip(faces, match_centres(centres, boxes), strict=True):
        if j is None:
            box = face.box if face.box is not None else points_box(face)
            if min(box.width, box.height) < MIN_BOX or \
                    max(box.width, box.height) > 4 * max(rgb.shape[:2]):
                raise DataError(image, f"the face of the data's row {face.row}: the detector "
                                "misses it, so it is framed from its box, and its box "
                                f"({box.width:g} x {box.height:g} px) is no face's; give a bbox "
                                "around the face, or label more of its points")
        if j is None and face.box is not None:  # a box drawn around it: as a detector's
            matrix = crop_transform(face.box, FRAMING[DETECTOR])
        elif j is None:
            matrix = crop_transform(points_box(face), LABELS)
        else:
            matrix = first_transform(boxes[j], FRAMING[DETECTOR])
        out.append(Framed(crop_face(grey, matrix), matrix, j is not None))
    return out
