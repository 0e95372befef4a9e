"""Where BlazeFace's crop of a face (what `detect` cuts) sits around the bounding box of its
iBUG-68 labels, on the shared youtube photos: the LABELS framing of photos/labelled.py, which
frames the faces the detector misses when labelled photos are read for training.

    PYTHONPATH=src python bench/labelled_framing.py
"""

from __future__ import annotations

import numpy as np
from common import SHARED

from facekeypoints import geometry
from facekeypoints.data.labelled import points_box
from facekeypoints.data.photos import read_photo_csv
from facekeypoints.photos.labelled import frame_photo


def main() -> None:
    faces, _ = read_photo_csv(SHARED / "photos" / "youtube" / "landmarks68.csv")
    scales, dxs, dys, missed = [], [], [], 0
    for face in faces:
        framed = frame_photo(face.image, [face])[0]
        if not framed.detected:
            missed += 1
            continue
        side = 96 / geometry.scale_of(framed.matrix)
        centre = geometry.apply(geometry.invert(framed.matrix), np.array([[47.5, 47.5]]))[0]
        box = points_box(face)
        scales.append(side / box.width)
        dxs.append((centre[0] - (box.left + box.width / 2)) / box.width)
        dys.append((centre[1] - (box.top + box.height / 2)) / box.width)
    print(f"{len(faces)} faces, {missed} missed by BlazeFace; median crop around the labels' "
          f"box: Framing({np.median(scales):.3f}, {np.median(dxs):.3f}, {np.median(dys):.3f})")


if __name__ == "__main__":
    main()
