"""A model of your own from labelled photos, measured: `mesh` trained on the youtube photos given
as COCO keypoints files, scored on photos of people it never saw, beside the built-in 68-point
model (builtin68) on the same photos.

    PYTHONPATH=src python bench/coco_photos.py            # 4 folds of the 40 people
    PYTHONPATH=src python bench/coco_photos.py --folds 1  # one fold: 30 people train, 10 score

The 40 people of ../shared/data/photos/youtube (487 photos, landmarks68.csv) are dealt into
`--folds` groups by name order (person k to group k mod folds); for each group, a COCO file of
the other people's photos trains `mesh` (every face framed by BlazeFace as `detect` frames it,
all of them training: validation 0) and a COCO file of the group's photos is the truth for
`evaluate-photos` (NME over the 68 points by the true eye centres), for the new model and for
builtin68 (fitted on the YouTube Faces crops of 237 other people, faces68/). With
--labels-framed, a third model: `mesh` trained on the same photos with each face framed by its
own labels (its points placed upright on iBUG-68's mean shape, as .pts folders were cut before)
instead of by the detector. Writes bench/results/coco_photos.csv and the COCO files under --work.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from common import PHOTOS, RESULTS, write_table

import facekeypoints as fk
from facekeypoints import api, geometry, schemes
from facekeypoints.data.coco import coco_document, write_coco
from facekeypoints.data.labelled import Framed, LabelledFace, person_of_photo, set_framer
from facekeypoints.inference.loading import load
from facekeypoints.photos import FacePipeline, read_photo
from facekeypoints.photos.scores import evaluate_photos

YOUTUBE = PHOTOS / "youtube"


def coco_of(rows: pd.DataFrame, path: Path) -> Path:
    """The rows' photos (absolute paths) and 68 points, each face's box its points'."""
    photos = []
    for _, row in rows.iterrows():
        points = row[[f"p{k}_{a}" for k in range(68) for a in "xy"]].to_numpy(float)
        points = points.reshape(68, 2)
        (x0, y0), (x1, y1) = points.min(0), points.max(0)
        height, width = read_photo(YOUTUBE / row["file"]).shape[:2]
        photos.append({"file_name": str(YOUTUBE / row["file"]), "width": width,
                       "height": height, "person": person_of_photo(row["file"]),
                       "faces": [{"box": (x0, y0, x1 - x0, y1 - y0), "points": points}]})
    document = coco_document(photos, [f"p{i}" for i in range(68)], [], "face")
    for image, photo in zip(document["images"], photos, strict=True):
        image["person"] = photo["person"]  # who is who: the training split holds people out
    write_coco(path, document)
    return path


def framed_by_labels(image: Path, faces: list[LabelledFace]) -> list[Framed]:
    """The framing the detector replaces: each face's points on the mean shape, upright."""
    grey = cv2.cvtColor(read_photo(image), cv2.COLOR_RGB2GRAY)
    mean = schemes.builtin("ibug68").mean_shape
    matrices = [geometry.fit_similarity(f.points, mean, rotate=True) for f in faces]
    return [Framed(geometry.crop(grey, m, 96), m, True) for m in matrices]


def train_mesh(train: Path, out: Path, by_labels: bool = False):
    if by_labels:
        set_framer(framed_by_labels, "labels")
    try:
        return fk.train("mesh", train, out, validation=0, progress=False, log=None)
    finally:
        set_framer(api._frame_photo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--labels-framed", action="store_true")
    parser.add_argument("--work", default="/tmp/coco_photos")
    parser.add_argument("--out", default=str(RESULTS / "coco_photos.csv"))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    truth = pd.read_csv(YOUTUBE / "landmarks68.csv")
    persons = truth["file"].map(person_of_photo)
    people = sorted(persons.unique())
    builtin = FacePipeline(load("builtin68"), "blazeface")
    names = ["mesh (COCO)", "builtin68"] + (["mesh, framed by labels"] if args.labels_framed
                                             else [])
    rows, errors = [], {name: [] for name in names}
    for fold in range(args.folds):
        test_people = people[fold::args.folds] if args.folds > 1 else people[30:]
        held = persons.isin(test_people)
        train = coco_of(truth[~held], work / f"train{fold}.json")
        test = coco_of(truth[held], work / f"test{fold}.json")
        models, seconds = {"builtin68": builtin}, {}
        for name in names:
            if name == "builtin68":
                continue
            by_labels = name != "mesh (COCO)"
            data = shutil.copy(train, work / f"train{fold}_labels.json") if by_labels else train
            start = time.perf_counter()
            run = train_mesh(Path(data), work / f"{'labels' if by_labels else 'mesh'}{fold}",
                             by_labels)
            seconds[name] = round(time.perf_counter() - start)
            models[name] = FacePipeline(load(run.path), "blazeface")
        for name in names:
            scores = evaluate_photos(models[name], YOUTUBE, test)
            errors[name].append(scores.nme * scores.detected)
            rows.append({"fold": fold, "model": name,
                         "train_people": len(people) - len(test_people),
                         "train_faces": int((~held).sum()), "test_people": len(test_people),
                         "test_faces": scores.faces, "detected": scores.detected,
                         "nme_pct": round(100 * scores.nme, 2),
                         "train_seconds": seconds.get(name, "")})
            print(rows[-1], flush=True)
    faces = sum(r["detected"] for r in rows if r["model"] == "builtin68")
    for name, sums in errors.items():
        rows.append({"fold": "all", "model": name, "test_faces": faces,
                     "nme_pct": round(100 * float(np.sum(sums)) / faces, 2)})
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
