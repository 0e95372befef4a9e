"""Predictors: faces in, keypoints out, whatever the model is (a Keras net, an ONNX file, a
group of specialists; the mesh and averages in their own modules). `loading.load` makes one
from what the command line calls MODEL."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import numpy as np

from .. import onnx_runtime, schemes
from ..errors import UserError
from ..keypoints import CENTRE, COLUMNS, IMAGE_SIZE, MIRROR_X, mirror_keypoints, unscale, x_mask
from ..mesh.backbone import MESH_INPUT, frame
from ..schemes import Scheme


class Predictor:
    """Faces (N, 96, 96, 1) in [0, 1] -> keypoints in pixels, one column per name in `columns`.

    `net` is the Keras model (None for ONNX files and groups); `tta` averages each face's
    prediction with its mirror image's; `scheme` is the landmark scheme of the columns (by
    default the built-in one they belong to); `mirror_axis` where the labels' x mirrors
    (keypoints.mirror_keypoints: the pixel-centre axis, or the run's measured one)."""

    # crops per followed face and video frame, each framed on the last keypoints: a CNN follows
    # a moving face only part of the way in one (docs/photos.md)
    track_passes = 2
    # whether `run` gives each face a face score (the mesh does), so that the photo pipeline
    # can drop what is no face; where not, the pipeline asks the face mesh
    scores_faces = False
    # turns the mirror spread into an uncertainty in pixels (inference/uncertainty.py): a
    # built-in model's folder has one, as has a run calibrated by tools/calibrate_uncertainty.py
    calibration = None
    # whether `run_3d` gives the face mesh's 3D points (depth and head pose follow from them)
    gives_mesh = False
    # whether the model's keypoints are the mesh's own points, in its order (their depth, the
    # mesh's z, goes into the output)
    points_are_mesh = False

    def __init__(self, net, columns: list[str], tta: bool = False, name: str = "",
                 scheme: Scheme | None = None, mirror_axis: float | np.ndarray = MIRROR_X):
        self.net, self.columns, self.tta, self.name = net, list(columns), tta, name
        self.mirror_axis = mirror_axis
        self.scheme = scheme or schemes.for_columns(self.columns, f"model {name}")

    @property
    def keypoints(self) -> list[str]:
        """The names of the points the model gives, in order."""
        return [c[:-2] for c in self.columns[::2]]

    def scheme_lines(self) -> list[list[int]]:
        """The scheme's lines to draw, as indices of the model's points (those it gives)."""
        index = {k: i for i, k in enumerate(self.keypoints)}
        return [[index[p] for p in line] for line in self.scheme.lines
                if all(p in index for p in line)]

    @property
    def mean_shape(self) -> np.ndarray:
        """Where the model's points sit in a face framed as its training faces were (the
        photo pipeline re-frames faces on it)."""
        index = {p: i for i, p in enumerate(self.scheme.points)}
        return self.scheme.mean_shape[[index[k] for k in self.keypoints]]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, {len(self.columns) // 2} keypoints"
                f"{', flip TTA' if self.tta else ''})")

    def for_photos(self) -> Predictor:
        """The model for crops cut from photographs (the photo pipeline asks every model):
        itself, unless it has a head of its own for them (the mesh's, a tuned mesh's)."""
        return self

    def export_net(self) -> tuple[object | None, dict[str, str]]:
        """The Keras net an ONNX export holds (None: no single net), and what the export
        carries beside the columns, scheme and flips (a tuned mesh: its photo head)."""
        return self.net, {}

    def run(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The model on a batch: scaled keypoints, and each face's face score in [0, 1] where
        the model gives one (the mesh does), else None."""
        from ..stored.nets import predict_scaled

        return predict_scaled(self.net, X), None

    def predict_scored(self, X: np.ndarray,
                       tta: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scaled keypoints, and whether the model saw a face in each crop (its face score at
        least 0.5; True for models without a score). `tta` overrides the model's flips."""
        return self.predict_all(X, tta)[:2]

    def predict_spread(self, X: np.ndarray, tta: bool | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """`predict_scored`'s two, and with flips the distance in pixels of the 96x96 crop
        between each point as the face gives it and as its mirror image does, (N, points):
        the photo pipeline's uncertainty reads it (None without flips)."""
        return self.predict_all(X, tta)[:3]

    def run_3d(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """`run`, and the face mesh's points (N, 468, 3) in each face's pixels where the model
        computes them (`gives_mesh`), else None."""
        return (*self.run(X), None)

    def predict_all(self, X: np.ndarray, tta: bool | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """`predict_spread`'s three, and each face's mesh points (N, 468, 3) in its crop's
        pixels (with flips averaged with its mirror image's, mirrored back) where the model is
        mesh-based, else None: the photo pipeline's uncertainty, depth and head pose come from
        one model call."""
        X = _faces(X)
        if not (self.tta if tta is None else tta):
            y, scores, mesh = self.run_3d(X)
            return y, _seen(scores, len(X)), None, mesh
        # average with the mirror image, mirrored back; one call for both (a video frame's one
        # face pays a model call's overhead once); the faces' own scores say what was seen
        both, scores, mesh = self.run_3d(np.concatenate([X, X[:, :, ::-1, :]]))
        y, mirrored = both[:len(X)], both[len(X):]
        back = mirror_keypoints(mirrored, self.scheme.flip_permutation(self.columns),
                                x_mask(self.columns), axis=self.mirror_axis)
        spread = np.linalg.norm((y - back).reshape(len(X), -1, 2), axis=2) * CENTRE
        if mesh is not None:  # the mesh too: its depth and the head's pose mirror exactly
            from ..mesh.backbone import mirrored_back

            mesh = (mesh[:len(X)] + mirrored_back(mesh[len(X):])) / 2
        return (y + back) / 2, _seen(scores, len(X)), spread, mesh

    def predict_scaled(self, X: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """Keypoints scaled to [-1, 1] as the nets are trained; `tta` overrides the model's."""
        return self.predict_scored(X, tta)[0]

    def predict(self, X: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """Keypoints in pixels of the 96x96 face, shape (N, columns), clipped to the image (a
        scheme whose points may leave it, a jaw line, to a crop either side)."""
        return np.clip(unscale(self.predict_scaled(X, tta)), *self.scheme.bounds)


def _seen(scores: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n, bool) if scores is None else np.asarray(scores[:n]) >= 0.5


def _faces(X: np.ndarray) -> np.ndarray:
    """(N, 96, 96, 1) float32 in [0, 1]; (N, 96, 96) and (96, 96) faces are accepted too."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 2:
        X = X[None]
    if X.ndim == 3:
        X = X[..., None]
    if X.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise UserError(f"faces of shape {X.shape}: expected (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 1) "
                        "grey images in [0, 1]")
    return X


CALL_BATCH = 64  # faces per call of an ONNX or LiteRT model


class OnnxPredictor(Predictor):
    """The same predictor on ONNX Runtime: no TensorFlow import, fast cold start. An exported
    `mesh-tuned` run also gives its body's mesh points and carries its photo head, which
    `for_photos` reads them with, as the run folder does."""

    def __init__(self, path: Path):
        try:
            self.session = onnx_runtime.session(path)
            # the export's metadata, read by ONNX Runtime itself: the base install has no onnx
            meta = dict(self.session.get_modelmeta().custom_metadata_map)
        except UserError:
            raise  # the opener's own line (a runtime asked for that is missing, a bad setting)
        except Exception as e:  # noqa: BLE001 - any failure to load is the file's fault
            raise UserError(f"MODEL {path}: cannot load this ONNX model ({type(e).__name__})") \
                from None
        columns = json.loads(meta.get("facekeypoints.columns", json.dumps(list(COLUMNS))))
        scheme = schemes.load(json.loads(meta["facekeypoints.scheme"])) \
            if "facekeypoints.scheme" in meta else None
        axis = np.array(json.loads(meta["facekeypoints.mirror_axis"])) \
            if "facekeypoints.mirror_axis" in meta else MIRROR_X
        super().__init__(None, columns, meta.get("facekeypoints.tta") == "true",
                         meta.get("facekeypoints.name", path.stem), scheme, axis)
        self.input_name, self.path = self.session.get_inputs()[0].name, Path(path)
        # a tuned mesh's export takes faces framed as the mesh sees them (mesh.backbone.frame;
        # its metadata says so too, `facekeypoints.input`); exports from before, and every
        # other net, take the 96x96 faces themselves. The input's shape decides: it holds in
        # a file re-saved without its metadata
        shape = list(self.session.get_inputs()[0].shape[1:])
        if shape not in ([IMAGE_SIZE, IMAGE_SIZE, 1], [MESH_INPUT, MESH_INPUT, 3]):
            raise UserError(f"MODEL {path}: takes images of shape {shape}; expected a "
                            f"facekeypoints export ({IMAGE_SIZE}x{IMAGE_SIZE} grey faces, or "
                            f"{MESH_INPUT}x{MESH_INPUT} framed for the face mesh)")
        self.framed = shape[-1] == 3
        self.photo_head, self.photos = None, False
        if "facekeypoints.photo_head" in meta:
            from ..mesh.heads import PhotoHead

            self.photo_head = PhotoHead.from_bytes(
                base64.b64decode(meta["facekeypoints.photo_head"]))
            # a tuned mesh: it follows a face through video in one crop a frame, as the frozen
            # mesh does (test_tracking)
            self.track_passes = 1

    def for_photos(self) -> OnnxPredictor:
        if self.photo_head is None:
            return self
        photos = copy.copy(self)
        photos.photos, photos.mirror_axis = True, self.photo_head.mirror_axis
        return photos

    @property
    def gives_mesh(self) -> bool:  # an exported tuned mesh on photos: its body's 2D points
        return self.photos

    def run(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        return self.run_3d(X)[:2]

    def run_3d(self, X: np.ndarray) -> tuple[np.ndarray, None, np.ndarray | None]:
        """`run`, and on photos the tuned body's mesh points (N, 468, 2): x and y, no depth
        (the head's pose then comes from an orthographic fit, mesh/pose.py)."""
        X = _faces(X)
        if len(X) == 0:
            return np.zeros((0, len(self.columns)), np.float32), None, None
        # in slices: a framed face is 12 times the 96x96 one, and a net's activations grow
        # with the batch (1,500 faces in one call took 7 GB)
        parts = [self.session.run(None, {self.input_name: frame(part) if self.framed
                                         else part})
                 for part in (X[i:i + CALL_BATCH] for i in range(0, len(X), CALL_BATCH))]
        outputs = [np.concatenate(out) for out in zip(*parts, strict=True)]
        if not self.photos:
            return outputs[0], None, None
        points = outputs[1].reshape(len(X), -1, 2).astype(np.float64)
        return self.photo_head(points).astype(np.float32), None, points


class GroupPredictor(Predictor):
    """Several specialists predicting together: all their columns, in Kaggle order."""

    def __init__(self, members: dict[str, Predictor], name: str):
        scheme = next(iter(members.values())).scheme
        columns = [c for c in scheme.columns if any(c in m.columns for m in members.values())]
        super().__init__(None, columns, any(m.tta for m in members.values()), name, scheme)
        self.members = members

    def predict_scored(self, X: np.ndarray,
                       tta: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        X = _faces(X)
        out = np.full((len(X), len(self.columns)), np.nan, np.float32)
        for member in self.members.values():
            idx = [self.columns.index(c) for c in member.columns]
            out[:, idx] = member.predict_scaled(X, tta)
        return out, np.ones(len(X), bool)

    def predict_all(self, X: np.ndarray, tta: bool | None = None
                    ) -> tuple[np.ndarray, np.ndarray, None, None]:
        """No mirror spread (the specialists each flip their own columns), no mesh."""
        return (*self.predict_scored(X, tta), None, None)


