"""Make the mean frontal face that head pose is measured against
(`src/facekeypoints/pretrained/mean_face.npy`): the face mesh's own 3D points (x, y and its
depth z, in the same scale) on the training faces of ../shared/data/faces (YouTube frames, faces
looking roughly at the camera), each centred and scaled to unit RMS radius, then aligned
(generalised Procrustes: each face rotated onto the mean, the mean taken again) and made
mirror-symmetric (averaged with its own mirror image, point pairs from the mesh468 scheme), so
that yaw and roll 0 are the symmetric face and pitch 0 the faces' mean pitch.

    python tools/make_mean_face.py [--data ../shared/data] [--every 2]

No file of MediaPipe's (its canonical face model) is used: only the converted mesh's outputs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facekeypoints import schemes
from facekeypoints.data import load_training
from facekeypoints.mesh.backbone import FaceMesh
from facekeypoints.mesh.pose import mean_face_path, rotations

ROUNDS = 5


def normalised(points: np.ndarray) -> np.ndarray:
    """Each face (N, P, 3) centred and of unit RMS radius."""
    centred = points - points.mean(axis=-2, keepdims=True)
    return centred / np.sqrt((centred ** 2).sum(axis=(-2, -1), keepdims=True) / points.shape[-2])


def symmetric(face: np.ndarray) -> np.ndarray:
    """The face averaged with its mirror image (x -> -x, each point onto its partner)."""
    scheme = schemes.builtin("mesh468")
    index = {p: i for i, p in enumerate(scheme.points)}
    partner = np.array([index[scheme.partner(p)] for p in scheme.points])
    mirrored = face[partner] * np.array([-1.0, 1.0, 1.0])
    return normalised(((face + mirrored) / 2)[None])[0]


def mean_face(points: np.ndarray) -> np.ndarray:
    """Generalised Procrustes of faces (N, 468, 3), from their plain mean (the camera's view)."""
    faces = normalised(points.astype(np.float64))
    mean = symmetric(faces.mean(axis=0))
    for _ in range(ROUNDS):
        r = rotations(faces, mean)  # mean -> face; each face is brought back by R^T
        aligned = np.einsum("npj,njk->npk", faces, r)  # rows: p R, i.e. R^T p
        mean = symmetric(aligned.mean(axis=0))
    return mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--every", type=int, default=2, help="use every Nth training face")
    args = parser.parse_args()
    faces = load_training(args.data / "faces" / "training.csv.gz")
    X = np.asarray(faces.X[::args.every])
    points, scores = FaceMesh().points3d(X, progress=True)
    kept = points[scores >= 0.5]
    face = mean_face(kept).astype(np.float32)
    np.save(mean_face_path(), face)
    print(f"wrote {mean_face_path()} from {len(kept)} of {len(X)} faces "
          f"(the mesh saw no face in {len(X) - len(kept)})")


if __name__ == "__main__":
    main()
