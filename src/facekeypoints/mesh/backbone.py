"""MediaPipe's face mesh (Apache-2.0; `pretrained/face_mesh.onnx`, converted by
tools/convert_face_mesh.py), frozen: 468 points on a face, and its face score.

The mesh sees each 96x96 face with a replicated border (it was trained on looser crops) at
192x192 in RGB; its points come back in the face's own pixels. Their depth `z` (MediaPipe's:
in the same scale as x and y, relative to the face's centre, smaller nearer the camera) is
scaled as they are: `points3d`."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from .. import onnx_runtime, schemes
from ..keypoints import IMAGE_SIZE, MIRROR_X
from ..progress import Progress

MESH_INPUT = 192
POINTS = 468
BORDER = 24  # pixels of replicated border around the 96x96 face: the mesh's own framing
# an exported net's `facekeypoints.input` when it takes faces framed by `frame`, not 96x96 ones
FRAMED = "mesh-framed"
BATCH = 8  # faces per call: 9.7 -> 6.7 ms a face on this 2-core CPU (1: the overhead per call)


def model_path() -> Path:
    return Path(str(resources.files("facekeypoints") / "pretrained" / "face_mesh.onnx"))


class FaceMesh:
    """The frozen backbone: faces (N, 96, 96, 1) in [0, 1] -> points (N, 468, 2) in the face's
    pixels, and the mesh's face score (N,) in [0, 1]."""

    def __init__(self) -> None:
        self.session = onnx_runtime.shared_session(model_path())
        self.input = self.session.get_inputs()[0].name

    def __call__(self, X: np.ndarray, progress: str | bool = False,
                 desc: str = "face mesh") -> tuple[np.ndarray, np.ndarray]:
        """`desc` names the faces on the progress bar (a run makes several passes)."""
        points, scores = self.points3d(X, progress, desc)
        return np.ascontiguousarray(points[..., :2]), scores

    def points3d(self, X: np.ndarray, progress: str | bool = False,
                 desc: str = "face mesh") -> tuple[np.ndarray, np.ndarray]:
        """Points (N, 468, 3): x, y in the face's pixels and z in the same scale (the mesh's
        depth, relative to the face's centre; smaller is nearer the camera), and the scores."""
        X = np.asarray(X, np.float32)
        points = np.empty((len(X), POINTS, 3), np.float32)
        scores = np.empty(len(X), np.float32)
        side = IMAGE_SIZE + 2 * BORDER
        with Progress(len(X), desc, "face", mode=progress, every=10.0) as bar:
            for start in range(0, len(X), BATCH):
                faces = X[start:start + BATCH]
                raw, score = self.session.run(None, {self.input: frame(faces)})
                # mesh pixels (pixel centres at integers + 0.5 in its own convention) -> ours
                done = slice(start, start + len(faces))
                points[done] = raw.reshape(-1, POINTS, 3) * (side / MESH_INPUT)
                points[done, :, :2] -= BORDER
                scores[done] = 1 / (1 + np.exp(-np.ravel(score)))
                bar.update(len(faces))
        return points, scores


def mirrored_back(points: np.ndarray) -> np.ndarray:
    """Mesh points (N, 468 or 478, 3) found on mirrored faces, put back into the faces' own
    frame: x mirrored about the pixel-centre axis, each point swapped with its partner (the
    scheme's measured pairs), z as it is."""
    out = points[:, _partners(points.shape[1])].copy()
    out[..., 0] = MIRROR_X - out[..., 0]
    return out


@functools.cache
def _partners(count: int) -> np.ndarray:
    scheme = schemes.builtin("mesh468" if count == POINTS else "mesh478")
    index = {p: i for i, p in enumerate(scheme.points)}
    return np.array([index[scheme.partner(p)] for p in scheme.points])


def frame(X: np.ndarray) -> np.ndarray:
    """Faces (N, 96, 96, 1) in [0, 1] as the mesh sees them, (N, 192, 192, 3): a replicated
    border, 192x192, grey in three channels. Done here, not in a net's graph: the frozen mesh
    is fed so, and the tuned one is exported so (with the framing inside its graph, LiteRT
    took 1.6 times as long for the tuned net as for MediaPipe's own file, docs/photos.md).
    Each face is written straight into the batch, its grey value broadcast to the three
    channels: half the time of converting and stacking."""
    X = np.asarray(X, np.float32)
    if X.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise ValueError(f"faces of shape {X.shape}: expected (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 1)")
    out = np.empty((len(X), MESH_INPUT, MESH_INPUT, 3), np.float32)
    for i, face in enumerate(X[..., 0]):
        framed = cv2.copyMakeBorder(face, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_REPLICATE)
        out[i] = cv2.resize(framed, (MESH_INPUT, MESH_INPUT),
                            interpolation=cv2.INTER_LINEAR)[..., None]
    return out
