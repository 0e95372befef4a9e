"""A `detect` job's keypoints as a COCO keypoints file (`detect --format coco`): pre-labels to
load into CVAT or Label Studio, correct by hand and train on (`train --data`). One annotation
per face found, with its box and score; every point labelled and visible (2); photos named
relative to the file. Videos are left out (COCO holds images)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .. import schemes
from ..data.coco import coco_document, write_coco
from ..errors import UserError
from ..schemes import Scheme

COCO_FILE = "keypoints.coco.json"


def job_coco(out: str | Path, scheme: Scheme | None = None) -> Path:
    """OUT/keypoints.coco.json from OUT/keypoints.json: the faces of every photo read (a photo
    with no face is listed with none, to be labelled by hand). The keypoint names are the
    records' (the model's), the skeleton its scheme's lines (the built-in scheme the names
    belong to where none is given)."""
    out = Path(out)
    records = json.loads((out / "keypoints.json").read_text(encoding="utf-8"))
    photos, names = [], None
    for record in records:
        if "frames" in record or not record.get("width"):
            continue  # a video, or a file that could not be read
        for face in record["faces"]:
            names = names or list(face["keypoints"])
        photos.append({"file_name": _relative(record["file"], out), "width": record["width"],
                       "height": record["height"],
                       "faces": [{"box": [face["box"][k] for k in ("left", "top", "width",
                                                                   "height")],
                                  "points": np.array(list(face["keypoints"].values())),
                                  "score": face["score"]} for face in record["faces"]]})
    names = names or (list(scheme.points) if scheme is not None else [])
    if scheme is None and names:
        try:
            scheme = schemes.for_columns([f"{n}_x" for n in names])
        except UserError:
            scheme = None  # a user's scheme, unknown here: no skeleton
    order = {p: i for i, p in enumerate(names)}
    lines = [[order[p] for p in line if p in order] for line in (scheme.lines if scheme else [])]
    path = out / COCO_FILE
    write_coco(path, coco_document(photos, names, lines, scheme.name if scheme else "face"))
    return path


def _relative(file: str, out: Path) -> str:
    """A photo's name as seen from the job's folder (absolute where no relative path leads
    there, such as another drive or a URL)."""
    if "://" in file:
        return file
    try:
        return Path(os.path.relpath(Path(file).resolve(), out.resolve())).as_posix()
    except ValueError:
        return str(Path(file).resolve())
