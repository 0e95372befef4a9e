"""Write the built-in schemes' TOML files (src/facekeypoints/schemes/): Kaggle's 15, iBUG's 68
and the face mesh's 468. What is measured rather than typed comes from the shared data:

- ibug68's mean shape: the mean of faces68/training.csv.gz's points (faces framed on Kaggle's
  mean shape, so it agrees with kaggle15's);
- mesh468's mirror pairs: the mesh run on faces and on their mirror images; point i of a mirror
  image, mirrored back, lands on its partner (assignment on the mean distance, one partner each).
  It finds the 28 points on the face's midline that MediaPipe's canonical face has;
- mesh468's mean shape: the mean mesh on the training faces;
- mesh478: mesh468's points, pairs and eyes, and MediaPipe's 5 points per iris (the iris model,
  mesh/iris.py; the pupil's centre first, m468-m472 the subject's right iris), each iris's
  points pairing with the other's in order; the irises' mean shape measured as mesh468's.

    python tools/make_schemes.py [--data ../shared/data] [--only mesh478]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from facekeypoints.data import load_training
from facekeypoints.keypoints import KEYPOINTS
from facekeypoints.mesh.backbone import FaceMesh

OUT = Path(__file__).resolve().parents[1] / "src" / "facekeypoints" / "schemes"

IBUG_PAIRS = [(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)] + \
    [(31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),
     (48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]
IBUG_LINES = [range(0, 17), range(17, 22), range(22, 27), range(27, 31), range(31, 36),
              [*range(36, 42), 36], [*range(42, 48), 42], [*range(48, 60), 48],
              [*range(60, 68), 60]]
# Kaggle's keypoints from iBUG's (as ../shared/data/README.md derives them)
IBUG_TO_KAGGLE = {"left_eye_center": range(42, 48), "right_eye_center": range(36, 42),
                  "left_eye_inner_corner": [42], "left_eye_outer_corner": [45],
                  "right_eye_inner_corner": [39], "right_eye_outer_corner": [36],
                  "left_eyebrow_inner_end": [22], "left_eyebrow_outer_end": [26],
                  "right_eyebrow_inner_end": [21], "right_eyebrow_outer_end": [17],
                  "nose_tip": [30], "mouth_left_corner": [54], "mouth_right_corner": [48],
                  "mouth_center_top_lip": [51], "mouth_center_bottom_lip": [57]}
# The mesh's eye contours (subject's left, right); they mirror onto each other point for point
MESH_LEFT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466]
MESH_RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]


def names(prefix: str, indices) -> str:
    return "[" + ", ".join(f'"{prefix}{i}"' for i in indices) + "]"


def pairs_text(prefix: str, pairs) -> str:
    return "[\n" + "".join(f'  ["{prefix}{a}", "{prefix}{b}"],\n' for a, b in pairs) + "]"


def shape_text(shape: np.ndarray) -> str:
    return "[\n" + "".join(f"  [{x:.3f}, {y:.3f}],\n" for x, y in shape) + "]"


def kaggle15(data: Path) -> str:
    return (
        '# Kaggle\'s "Facial Keypoints Detection" keypoints; "left" is the subject\'s left.\n'
        'name = "kaggle15"\n'
        'description = "the 15 keypoints of Kaggle\'s Facial Keypoints Detection"\n'
        f"points = [{', '.join(repr(k).replace(chr(39), chr(34)) for k in KEYPOINTS)}]\n"
        "# mirror pairs come from the names (left_* <-> right_*); the mean shape is\n"
        "# keypoints.MEAN_SHAPE, the mean of Kaggle's real labels\n"
        "inside = true\n"
        'eyes = [["left_eye_center"], ["right_eye_center"]]\n'
        "# no lines: 15 points are drawn as dots\n")


def ibug68(data: Path) -> str:
    frame = pd.read_csv(data / "faces68" / "training.csv.gz", usecols=lambda c: c != "Image")
    mean = frame.to_numpy(np.float64).reshape(len(frame), 68, 2).mean(axis=0)
    table = "".join(f"{k} = {names('p', v)}\n" for k, v in IBUG_TO_KAGGLE.items())
    return (
        "# iBUG 300-W's 68 points, 0-based (a .pts file's order); p42-p47 are the subject's\n"
        "# left eye. Mean shape: faces68/training.csv.gz (tools/make_schemes.py).\n"
        'name = "ibug68"\n'
        'description = "iBUG 300-W\'s 68 face landmarks (jaw, brows, nose, eyes, lips)"\n'
        f"points = {names('p', range(68))}\n"
        f"mirror = {pairs_text('p', IBUG_PAIRS)}\n"
        f"lines = [\n{''.join(f'  {names(chr(112), line)},{chr(10)}' for line in IBUG_LINES)}]\n"
        f"eyes = [{names('p', range(42, 48))}, {names('p', range(36, 42))}]\n"
        f"mean_shape = {shape_text(mean)}\n\n"
        "# Kaggle's 15 from these: eye centres the mean of the six eye points, the rest one each\n"
        f"[kaggle15]\n{table}")


def mesh468(data: Path) -> str:
    faces = load_training(data / "faces" / "training.csv.gz")
    X = np.asarray(faces.X[::5])
    mesh = FaceMesh()
    points, _ = mesh(X, progress=True)
    mirrored, _ = mesh(np.ascontiguousarray(X[:, :, ::-1, :]), progress=True)
    mirrored[..., 0] = 95 - mirrored[..., 0]  # back into the faces' own frame
    cost = np.linalg.norm(mirrored[:, :, None] - points[:, None], axis=-1).mean(axis=0)
    _, partner = linear_sum_assignment((cost + cost.T) / 2)
    assert (partner[partner] == np.arange(len(partner))).all(), "pairs must be symmetric"
    pairs = [(i, int(j)) for i, j in enumerate(partner) if i < j]
    print(f"mesh468: {len(pairs)} pairs, {int((partner == np.arange(468)).sum())} on the midline")
    return (
        "# The face mesh's 468 points (MediaPipe's canonical face), m0..m467 in its order.\n"
        "# Pairs and mean shape measured by tools/make_schemes.py.\n"
        'name = "mesh468"\n'
        'description = "the 468 points of MediaPipe\'s face mesh"\n'
        f"points = {names('m', range(468))}\n"
        f"mirror = {pairs_text('m', pairs)}\n"
        f"eyes = [{names('m', MESH_LEFT_EYE)}, {names('m', MESH_RIGHT_EYE)}]\n"
        f"mean_shape = {shape_text(points.mean(axis=0))}\n")


def mesh478(data: Path) -> str:
    """mesh468's TOML (as written) with the irises added: points, pairs, mean shape."""
    from facekeypoints.mesh.iris import Irises

    mesh = (OUT / "mesh468.toml").read_text()
    faces = load_training(data / "faces" / "training.csv.gz")
    X = np.asarray(faces.X[::5])
    points, _ = FaceMesh().points3d(X, progress=True)
    irises = Irises()(X, points)[..., :2].mean(axis=0)
    pairs = "".join(f'  ["m{468 + i}", "m{473 + i}"],\n' for i in range(5))
    head, rest = mesh.split("mirror = [\n", 1)
    rest, shape = rest.split("mean_shape = [\n", 1)
    return (
        "# The face mesh's 468 points and MediaPipe's 5 per iris (its 478-point order):\n"
        "# m468-m472 the subject's right iris, m473-m477 the left, each its pupil's centre first.\n"
        "# Made from mesh468.toml and the iris model by tools/make_schemes.py.\n"
        + head.split("\n", 2)[2]
        .replace('name = "mesh468"', 'name = "mesh478"')
        .replace("the 468 points of MediaPipe's face mesh",
                 "the 468 points of MediaPipe's face mesh and 5 per iris")
        .replace('"m467"]', '"m467", ' + ", ".join(f'"m{i}"' for i in range(468, 478)) + "]")
        + "mirror = [\n" + pairs + rest + "mean_shape = [\n" + shape[:-2]
        + "".join(f"  [{x:.3f}, {y:.3f}],\n" for x, y in irises) + "]\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--only", help="write this scheme alone (mesh478 reads mesh468.toml)")
    args = parser.parse_args()
    for make in (kaggle15, ibug68, mesh468, mesh478):
        if args.only and make.__name__ != args.only:
            continue
        path = OUT / f"{make.__name__}.toml"
        path.write_text(make(args.data))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
