"""Where the labels' x mirrors, measured with the mesh as the instrument, and the loosely
re-framed faces that measurement (and the photo head) needs."""

from __future__ import annotations

import cv2
import numpy as np

from ..keypoints import IMAGE_SIZE, MIRROR_X, mirror_keypoints, unscale, x_mask
from ..keypoints import scale as scale_keypoints
from ..schemes import Scheme, for_columns
from .backbone import FaceMesh
from .heads import MeshHead, PhotoHead

# As loosely as a face detector frames faces (degrees, px, relative; as recipes/mesh.toml):
# where measure_mirror_axis frames faces so that no head can read their position in the crop.
LOOSE_FRAMING = {"rotate": 15.0, "shift": 8.0, "zoom": 0.15}
PHOTO_COPIES = 3  # loosely re-framed copies of each training face for a photo head


def mirrored_labels(y: np.ndarray, columns: list[str], axis=MIRROR_X,
                    scheme: Scheme | None = None) -> np.ndarray:
    """Scaled labels of the mirror images: mirrored, left and right swapped, missing kept."""
    perm = (scheme or for_columns(columns)).flip_permutation(columns)
    mirrored = mirror_keypoints(np.nan_to_num(y), perm, x_mask(columns), axis=axis)
    mirrored[np.isnan(y[:, perm])] = np.nan
    return mirrored


def mirror_axis(head: type[MeshHead], points: np.ndarray, y: np.ndarray,
                mirrored_points: np.ndarray, columns: list[str], alpha: float,
                scheme: Scheme | None = None) -> np.ndarray:
    """Where each column's x mirrors for this kind of head, measured: the head fitted on the
    faces as they are predicts their mirror images, and the labels' own convention comes along.
    Labels that follow the pixel-centre convention mirror about MIRROR_X; labels counted from 1
    (as our source's seem to be) sit about a pixel right of it, and mirroring about MIRROR_X
    would teach a flip-trained head half of that offset the wrong way, for every face. The plain
    head also reads where a face sits in its crop, which mirroring moves, so each head measures
    its own. A left/right pair shares its axis."""
    predicted = unscale(head.fit(points, y, alpha)(mirrored_points))
    perm = (scheme or for_columns(columns)).flip_permutation(columns)
    axis = np.nanmedian(predicted + unscale(y)[:, perm], axis=0)
    axis = (axis + axis[perm]) / 2
    return np.where(x_mask(columns), axis, MIRROR_X)


def reframe(X: np.ndarray, y: np.ndarray, rng: np.random.Generator, rotate: float,
            shift: float, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """Each face turned, moved and scaled at random about its centre (edges replicated), its
    keypoints (pixels, NaN where missing) moved along: crops framed as loosely as a detector
    frames faces, so that where a face sits in its crop no longer tells where its keypoints are."""
    n = len(X)
    angle = np.deg2rad(rng.uniform(-rotate, rotate, n))
    size = rng.uniform(1 - zoom, 1 + zoom, n)
    move = rng.uniform(-shift, shift, (n, 2))
    centre = np.array([IMAGE_SIZE / 2 - 0.5] * 2)
    out_X, out_y = np.empty_like(X), np.empty_like(y)
    for i in range(n):
        c, s = size[i] * np.cos(angle[i]), size[i] * np.sin(angle[i])
        linear = np.array([[c, -s], [s, c]])
        matrix = np.hstack([linear, (centre - linear @ centre + move[i])[:, None]])
        out_X[i, ..., 0] = cv2.warpAffine(X[i, ..., 0], matrix, (IMAGE_SIZE, IMAGE_SIZE),
                                          flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REPLICATE)
        out_y[i] = (y[i].reshape(-1, 2) @ linear.T + matrix[:, 2]).reshape(-1)
    return out_X, out_y


def measure_mirror_axis(faces, columns: list[str], seed: int, progress: str | bool = False,
                        ridge: float = 0.3, scheme: Scheme | None = None,
                        aligned: bool = False) -> np.ndarray:
    """`mirror_axis` for any flip-trained model, with the mesh as the measuring instrument: the
    faces framed loosely (so the head cannot read a position prior) and their mirror images.
    `aligned`: for a model that reads the faces as framed, position prior and all, as the
    mesh's plain head does (the tuned mesh): the faces as they are and that head. On the shared
    faces the two give 97.4 and 95.8; the tuned mesh flipped about the first sat 0.28 px right
    of the truth on the Kaggle test people (bench/keypoint_errors.py)."""
    if aligned:
        points, mirrored = points_and_mirrors(FaceMesh(), faces.X, progress)
        return mirror_axis(MeshHead, points, faces.y, mirrored, columns, ridge, scheme)
    X, y = reframe(faces.X, unscale(faces.y), np.random.default_rng(seed), **LOOSE_FRAMING)
    points, mirrored = points_and_mirrors(FaceMesh(), X, progress)
    return mirror_axis(PhotoHead, points, scale_keypoints(y), mirrored, columns, ridge, scheme)


def points_and_mirrors(mesh: FaceMesh, X: np.ndarray, progress, what: str = "faces"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Mesh points of the faces and of their mirror images (`what`: the faces, as the progress
    bars name them)."""
    points, _ = mesh(X, progress, f"face mesh: {what}")
    mirrored, _ = mesh(np.ascontiguousarray(X[:, :, ::-1, :]), progress,
                       f"face mesh: {what}, mirrored")
    return points, mirrored
