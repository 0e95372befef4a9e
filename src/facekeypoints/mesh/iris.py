"""MediaPipe's iris model (Apache-2.0; `pretrained/iris_landmark.onnx`, converted by
tools/convert_iris.py): 5 points per iris, the pupil's centre first, on a 64x64 crop of each eye.

The crops are cut as MediaPipe's iris graph cuts them (iris_landmark_landmarks_to_roi and
iris_landmark_cpu): a square around the two eye corners the face mesh gives (points 33 and 133
for the subject's right eye, 362 and 263 for the left), turned so that the corners lie level,
2.3 times the corners' longer extent on a side, edges replicated, 64x64, the subject's left eye
flipped (the model knows one eye). Here they are cut from the 96x96 face the mesh sees (grey,
in three channels), so the irises follow every path the mesh's points do (photos, video, the
96x96 faces of `evaluate`). The order is MediaPipe's 478-point one: m468-m472 the subject's
right iris, m473-m477 the left."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from .. import onnx_runtime

CROP = 64
SCALE = 2.3  # the crop's side over the eye corners' longer extent (MediaPipe's RectTransformation)
# (start, end) corners and whether the crop is flipped, in the order of the iris points
EYES = (((33, 133), False), ((362, 263), True))
IRIS_POINTS = 5
# the iris points' names in a 478-point scheme, by the subject's eye
IRISES = {"left": [f"m{i}" for i in range(473, 478)],
          "right": [f"m{i}" for i in range(468, 473)]}


def model_path() -> Path:
    return Path(str(resources.files("facekeypoints") / "pretrained" / "iris_landmark.onnx"))


def eye_transforms(mesh: np.ndarray) -> list[list[np.ndarray]]:
    """For each face's mesh points (N, 468, >=2), each eye's 2x3 matrix from the face's pixels
    to its 64x64 crop (before the flip)."""
    out = []
    for face in mesh:
        matrices = []
        for (start, end), _ in EYES:
            a, b = face[start, :2].astype(np.float64), face[end, :2].astype(np.float64)
            centre, d = (a + b) / 2, b - a
            side = max(SCALE * max(abs(d[0]), abs(d[1])), 1e-3)
            angle = np.arctan2(d[1], d[0])
            s, c = np.sin(-angle) * CROP / side, np.cos(-angle) * CROP / side
            linear = np.array([[c, -s], [s, c]])
            matrices.append(np.column_stack([linear, CROP / 2 - linear @ centre]))
        out.append(matrices)
    return out


class Irises:
    """The iris model on faces (N, 96, 96) in [0, 1] with their mesh points (N, 468, 3):
    (N, 10, 3) iris points in the faces' pixels, z in the same scale (the iris model's depth,
    added to its eye corners' mesh depth)."""

    def __init__(self) -> None:
        self.session = onnx_runtime.shared_session(model_path())
        self.input = self.session.get_inputs()[0].name
        # the second output, in the .tflite's order and the .onnx's (tools/convert_iris.py
        # checks it): the runtime may be LiteRT, whose names need not be ONNX Runtime's
        self.output = 1

    def __call__(self, faces: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces, np.float32).reshape(len(faces), *faces.shape[1:3])
        transforms = eye_transforms(mesh)
        crops = []
        for face, matrices in zip(faces, transforms, strict=True):
            for matrix, (_, flip) in zip(matrices, EYES, strict=True):
                eye = cv2.warpAffine(face, matrix, (CROP, CROP), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE)
                crops.append(np.repeat((eye[:, ::-1] if flip else eye)[..., None], 3, axis=2))
        out = np.zeros((len(faces), 2 * IRIS_POINTS, 3), np.float32)
        if not crops:
            return out
        iris = self.session.run(None, {self.input: np.ascontiguousarray(np.stack(crops))})
        iris = iris[self.output].reshape(len(faces), 2, IRIS_POINTS, 3)
        for i, matrices in enumerate(transforms):
            for e, (matrix, ((start, end), flip)) in enumerate(zip(matrices, EYES,
                                                                   strict=True)):
                points = iris[i, e].astype(np.float64)
                if flip:
                    points[:, 0] = CROP - points[:, 0]
                back = cv2.invertAffineTransform(matrix)
                scale = float(np.hypot(back[0, 0], back[1, 0]))
                rows = slice(e * IRIS_POINTS, (e + 1) * IRIS_POINTS)
                out[i, rows, :2] = points[:, :2] @ back[:, :2].T + back[:, 2]
                out[i, rows, 2] = points[:, 2] * scale + (mesh[i, start, 2] + mesh[i, end, 2]) / 2
        return out


def iris_measures(names: tuple[str, ...] | list[str], keypoints: np.ndarray) -> dict:
    """Each iris's pupil centre and radius (the mean distance of its 4 edge points from the
    centre), in the keypoints' pixels, where the points include a 478-point scheme's irises
    (by the subject's eye); {} for other schemes."""
    index = {k: i for i, k in enumerate(names)}
    if not all(p in index for eye in IRISES.values() for p in eye):
        return {}
    out = {}
    for eye, points in IRISES.items():
        iris = np.asarray(keypoints, np.float64)[[index[p] for p in points]]
        radius = np.linalg.norm(iris[1:] - iris[0], axis=1).mean()
        out[eye] = {"pupil": [round(float(iris[0, 0]), 2), round(float(iris[0, 1]), 2)],
                    "radius": round(float(radius), 2)}
    return out
