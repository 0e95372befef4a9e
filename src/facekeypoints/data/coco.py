"""COCO keypoints files, the format CVAT, Label Studio and most landmark data sets exchange:
`images` (id, file_name, width, height), `annotations` (image_id, `keypoints` as x, y,
visibility triples, a `bbox` [x, y, width, height]) and `categories` (the keypoint names and a
`skeleton` of 1-based index pairs). Read here into labelled faces, written with the standard
library (pre-labelling: `detect --format coco`).

Coordinates: COCO's pixel (x, y) is measured from the image's top-left corner, so the centre of
the first pixel is (0.5, 0.5); ours count pixel centres from 0. Reading subtracts 0.5, writing
adds it. Visibility 0 is an unlabelled point (masked in the loss); 1 (labelled, hidden) and 2
(labelled, visible) are both labels.

The category's keypoint names say the scheme: p0..p67 is iBUG's 68, Kaggle's 15 names are
Kaggle's, any other list is a scheme of the user's (left/right pairs from the names, the
skeleton as its lines, eyes from points named left_eye and right_eye).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, UserError
from ..files import atomic_write_text
from ..geometry import Box
from ..schemes import BUILTIN, Scheme, builtin, from_dict
from .labelled import LabelledFace, image_path

ORIGIN = 0.5  # COCO's coordinate of the first pixel's centre


def scheme_of_category(category: dict, path: str | Path) -> Scheme:
    """The scheme a category's keypoint names make: a built-in one whose points they are (in
    any order), else the user's own, named after the category."""
    names = category.get("keypoints")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DataError(path, "categories: expected a category with a list of keypoint names "
                              "(\"keypoints\": [\"left_eye\", ...])")
    for name in BUILTIN:
        scheme = builtin(name)
        if sorted(names) == sorted(scheme.points):
            return scheme
    points = [_identifier(n) for n in names]
    values: dict[str, Any] = {"name": _identifier(str(category.get("name") or "coco")),
                              "points": points}
    skeleton = category.get("skeleton") or []
    try:
        pairs = [(int(a), int(b)) for a, b in skeleton]
        if not all(1 <= i <= len(points) for pair in pairs for i in pair):
            raise ValueError("out of range")
        values["lines"] = [[points[a - 1], points[b - 1]] for a, b in pairs]
    except (TypeError, ValueError):
        raise DataError(path, "categories: skeleton expected pairs of 1-based keypoint "
                              f"numbers, 1 to {len(points)}") from None
    if "left_eye" in points and "right_eye" in points:
        values["eyes"] = [["left_eye"], ["right_eye"]]
    try:
        return from_dict(values, f"{path}: category {values['name']}")
    except UserError as e:
        raise DataError(path, str(e).split(": ", 2)[-1]) from None


def _identifier(name: str) -> str:
    """A keypoint name as a scheme's point name: what is not a letter, digit or _ becomes _."""
    out = re.sub(r"\W", "_", name.strip())
    return out if out.isidentifier() else f"k_{out}"


def read_coco(path: str | Path, scheme: Scheme | None = None
              ) -> tuple[list[LabelledFace], Scheme]:
    """The labelled faces of a COCO keypoints file (one category of keypoints), in the order
    of its annotations; who a face is from the image's or the annotation's `person` (CVAT:
    the annotation's attributes), when given."""
    document = _read_json(path)
    for part in ("images", "annotations", "categories"):
        if not isinstance(document.get(part) or [], list):
            raise DataError(path, f"{part}: expected a list, found "
                                  f"{type(document[part]).__name__}")
    categories = [c for c in document.get("categories") or [] if isinstance(c, dict)
                  and c.get("keypoints")]
    if len(categories) != 1:
        raise DataError(path, f"expected one category with keypoints, found {len(categories)}")
    category = categories[0]
    scheme = scheme or scheme_of_category(category, path)
    names = [_identifier(n) for n in category["keypoints"]]
    if sorted(names) != sorted(scheme.points):
        raise DataError(path, f"category {category.get('name')}: its keypoints are not scheme "
                              f"{scheme.name}'s points")
    order = [names.index(p) for p in scheme.points]
    images = {}
    for image in document.get("images") or []:
        if not isinstance(image, dict) or not isinstance(image.get("id"), int | str) \
                or "file_name" not in image:
            raise DataError(path, "images: expected entries with an id (a number or a "
                                  "string) and a file_name")
        images[image["id"]] = image
    base = Path(path).parent
    faces = []
    notes = document.get("annotations") or []
    for row, note in enumerate(notes, start=1):
        if not isinstance(note, dict):
            raise DataError(path, "annotations: expected objects", row)
        if note.get("category_id") != category.get("id"):
            continue
        if not isinstance(note.get("image_id"), int | str):
            raise DataError(path, f"annotation {note.get('id')}: image_id expected a number "
                                  "or a string", row)
        image = images.get(note.get("image_id"))
        if image is None:
            raise DataError(path, f"annotation {note.get('id')}: image_id "
                                  f"{note.get('image_id')!r} is in no image", row)
        points = _points(note, len(names), path, row)[order]
        if np.isnan(points).all():
            continue  # nothing labelled: a face drawn but not yet marked
        attributes = note.get("attributes") if isinstance(note.get("attributes"), dict) else {}
        person = note.get("person") or attributes.get("person") or image.get("person")
        faces.append(LabelledFace(image_path(base, str(image["file_name"]), path, row), points,
                                  _box(note.get("bbox"), path, row),
                                  None if person in (None, "") else str(person), row))
    if not faces and notes and not any(note.get("category_id") == category.get("id")
                                       for note in notes):
        raise DataError(path, f"no annotation has category_id {category.get('id')!r}, the id of "
                              f"category {category.get('name')!r} (found "
                              f"{notes[0].get('category_id')!r})")
    if not faces:
        raise DataError(path, "no annotation with a labelled keypoint")
    return faces, scheme


def _read_json(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(path, f"not a JSON file ({type(e).__name__}: {e})") from None
    if not isinstance(document, dict) or "annotations" not in document:
        raise DataError(path, "expected a COCO keypoints file (images, annotations, categories)")
    return document


def _points(note: dict, count: int, path: str | Path, row: int) -> np.ndarray:
    """(count, 2) points of an annotation, NaN where its visibility is 0."""
    values = note.get("keypoints")
    try:
        triples = np.asarray(values, np.float64).reshape(-1, 3)
    except (TypeError, ValueError):
        triples = None
    if triples is None or len(triples) != count or not np.isfinite(triples).all() \
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise DataError(path, f"annotation {note.get('id')}: keypoints expected {count} x, y, "
                              "visibility triples of numbers", row)
    if not np.isin(triples[:, 2], (0, 1, 2)).all():
        raise DataError(path, f"annotation {note.get('id')}: visibility expected 0 "
                              "(unlabelled), 1 (labelled, hidden) or 2 (labelled, visible)", row)
    points = triples[:, :2] - ORIGIN
    points[triples[:, 2] <= 0] = np.nan
    return points


def _box(bbox: Any, path: str | Path, row: int) -> Box | None:
    if bbox is None:
        return None
    try:
        left, top, width, height = map(float, bbox)
    except (TypeError, ValueError):
        raise DataError(path, "bbox: expected [x, y, width, height]", row) from None
    return Box(left, top, width, height, 0.0) if width > 0 and height > 0 else None


def coco_document(photos: list[dict], names: list[str], lines: list[list[int]],
                  category: str) -> dict:
    """A COCO keypoints file of photos: each {"file_name", "width", "height", "faces": [{"box":
    (left, top, width, height), "points": (P, 2) pixel centres, "score"}]}; every point written
    labelled and visible (2), `lines` (index lists) as the skeleton's 1-based pairs."""
    skeleton = sorted({(min(a, b) + 1, max(a, b) + 1) for line in lines
                       for a, b in zip(line, line[1:], strict=False) if a != b})
    images, annotations = [], []
    for image_id, photo in enumerate(photos, start=1):
        images.append({"id": image_id, "file_name": photo["file_name"],
                       "width": int(photo["width"]), "height": int(photo["height"])})
        for face in photo["faces"]:
            left, top, width, height = (float(v) for v in face["box"])
            triples = [[round(float(x) + ORIGIN, 2), round(float(y) + ORIGIN, 2), 2]
                       for x, y in np.asarray(face["points"])]
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                "keypoints": [v for t in triples for v in t], "num_keypoints": len(triples),
                "bbox": [round(left, 2), round(top, 2), round(width, 2), round(height, 2)],
                "area": round(width * height, 2), "iscrowd": 0,
                "score": round(float(face.get("score", 1.0)), 4)})
    return {"info": {"description": "keypoints by facekeypoints (pre-labels: correct them)"},
            "images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": category, "supercategory": "face",
                            "keypoints": list(names), "skeleton": [list(p) for p in skeleton]}]}


def write_coco(path: str | Path, document: dict) -> None:
    """The file, written atomically."""
    atomic_write_text(Path(path), json.dumps(document, indent=1))
