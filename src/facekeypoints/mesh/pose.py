"""Head pose from the face mesh's 3D points: the rotation that best puts a mean frontal face
(`pretrained/mean_face.npy`, made by tools/make_mean_face.py from the mesh's own points on the
training faces) onto a face's 468 points (Umeyama: rotation, scale and shift in least squares,
no reflection), read as yaw, pitch and roll in degrees.

Axes are the photo's: x to the right, y down, z away from the camera (the mesh's depth grows
away from it). The rotation is taken apart as R = Rz(-roll) Ry(-yaw) Rx(-pitch), so that

- roll > 0: the head (or the photo) turned counter-clockwise as seen; turning a photo by a
  degrees counter-clockwise adds a to roll and leaves yaw and pitch alone;
- yaw > 0: the nose points toward the photo's right (the subject turns to their left); a
  mirrored photo gives -yaw (and -roll);
- pitch > 0: the nose points up (the head tilts back).

0, 0, 0 is the mean face: looking at the camera as the training faces (YouTube frames) do on
average; pitch 0 is their mean pitch, yaw and roll 0 the mean face's mirror symmetry."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

POSE_KEYS = ("yaw", "pitch", "roll")


def mean_face_path() -> Path:
    return Path(str(resources.files("facekeypoints") / "pretrained" / "mean_face.npy"))


_MEAN_FACE: np.ndarray | None = None


def mean_face() -> np.ndarray:
    """(468, 3): the mean frontal face, centred, of unit RMS radius, mirror-symmetric in x."""
    global _MEAN_FACE
    if _MEAN_FACE is None:
        _MEAN_FACE = np.load(mean_face_path()).astype(np.float64)
    return _MEAN_FACE


def rotations(points: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """(N, 3, 3): for each face's (N, P, 3) points, the rotation R of the best fit
    s R reference + t (Umeyama, det R = +1) of `reference` (default the mean face) to it."""
    p = np.asarray(points, np.float64)
    m = mean_face() if reference is None else np.asarray(reference, np.float64)
    pc = p - p.mean(axis=-2, keepdims=True)
    mc = m - m.mean(axis=-2, keepdims=True)
    u, _, vt = np.linalg.svd(np.einsum("pi,npj->nij", mc, pc))  # sum over points of m p^T
    flip = np.sign(np.linalg.det(np.einsum("nij,njk->nik", vt.transpose(0, 2, 1),
                                           u.transpose(0, 2, 1))))
    d = np.ones((len(p), 3))
    d[:, 2] = np.where(flip == 0, 1, flip)
    return np.einsum("nji,nj,nkj->nik", vt, d, u)  # V diag(d) U^T


def rotations_2d(points: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """(N, 3, 3): the rotation of the reference's best scaled orthographic projection onto each
    face's (N, P, 2) points, where a model gives the mesh's x and y alone (a tuned mesh): the
    least-squares affine map of the centred reference onto them, its nearest scaled rotation's
    two rows (SVD), the third their cross product."""
    p = np.asarray(points, np.float64)
    m = mean_face() if reference is None else np.asarray(reference, np.float64)
    pc = p - p.mean(axis=-2, keepdims=True)
    mc = m - m.mean(axis=-2, keepdims=True)
    affine = np.einsum("npi,pj->nij", pc, mc) @ np.linalg.inv(mc.T @ mc)  # (N, 2, 3)
    u, _, vt = np.linalg.svd(affine, full_matrices=False)
    rows = u @ vt  # (N, 2, 3), orthonormal rows
    return np.concatenate([rows, np.cross(rows[:, 0], rows[:, 1])[:, None]], axis=1)


def angles(rotation: np.ndarray) -> np.ndarray:
    """(N, 3) yaw, pitch, roll in degrees of rotations (N, 3, 3), as the module says."""
    r = np.asarray(rotation, np.float64)
    yaw = np.arcsin(np.clip(r[:, 2, 0], -1.0, 1.0))  # -asin(-R20), the sign of the convention
    pitch = -np.arctan2(r[:, 2, 1], r[:, 2, 2])
    roll = -np.arctan2(r[:, 1, 0], r[:, 0, 0])
    return np.degrees(np.stack([yaw, pitch, roll], axis=1))


def head_pose(points: np.ndarray) -> np.ndarray:
    """(N, 3) yaw, pitch, roll in degrees of faces' mesh points (N, 468, 3), in a photo's
    pixels (x right, y down, z the mesh's depth in the same scale); of (N, 468, 2) points (no
    depth) by the orthographic fit."""
    p = np.asarray(points, np.float64)
    if len(p) == 0:
        return np.zeros((0, 3))
    return angles(rotations(p) if p.shape[-1] == 3 else rotations_2d(p))


def axes(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3): the head's own axes in the photo's, as rows: x toward the subject's left ear (the
    photo's right for a frontal face), y down the face, z into the head (away from the
    camera). The drawn pictures show them (photos/outputs.py: draw_pose)."""
    y, p, r = np.radians([-yaw, -pitch, -roll])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return (rz @ ry @ rx).T
