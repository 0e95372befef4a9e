"""The face mesh and its head as one predictor: what evaluate, submit, detect and the API take.
It needs no TensorFlow (ONNX Runtime and NumPy)."""

from __future__ import annotations

import numpy as np

from .. import schemes
from ..errors import UserError
from ..inference.predictor import Predictor
from ..keypoints import MIRROR_X, scale
from ..stored.recipe import Recipe
from ..stored.runs import RunFolder
from .backbone import FaceMesh
from .heads import MeshHead, PhotoHead
from .iris import Irises


class MeshPredictor(Predictor):
    """Where the mesh finds no face in a crop (its face score below 0.5) the head still
    predicts from the points it gave, and says so: `predict_scored`'s second array. It follows
    a face through video in one pass a frame (as accurate as two, bench/video.py)."""

    track_passes = 1
    scores_faces = True
    gives_mesh = True

    def __init__(self, head: MeshHead, columns: list[str], tta: bool, name: str,
                 photo_head: PhotoHead, photos: bool = False, scheme=None):
        super().__init__(None, columns, tta, name, scheme,
                         (photo_head if photos else head).mirror_axis)
        self.head, self.photo_head, self.mesh = head, photo_head, FaceMesh()
        self.photos = photos

    def run(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.run_3d(X)[:2]

    def run_3d(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        points, scores = self.mesh.points3d(X)
        head = self.photo_head if self.photos else self.head
        return head(np.ascontiguousarray(points[..., :2])), scores, points

    def for_photos(self) -> MeshPredictor:
        """The same model with the head for crops cut from photographs (see PhotoHead)."""
        return MeshPredictor(self.head, self.columns, self.tta, self.name, self.photo_head,
                             photos=True, scheme=self.scheme)


class MeshPointsPredictor(Predictor):
    """The face mesh's own 468 points (scheme mesh468), as MediaPipe places them: no head, no
    flips. Its points are MediaPipe's convention, not fitted to anyone's labels. `irises`:
    scheme mesh478, the 468 and MediaPipe's iris model's 5 points per iris (mesh/iris.py)."""

    track_passes = 1
    scores_faces = True
    gives_mesh = True
    points_are_mesh = True

    def __init__(self, irises: bool = False):
        name = "mesh478" if irises else "mesh468"
        scheme = schemes.builtin(name)
        super().__init__(None, scheme.columns, False, name, scheme)
        self.mesh = FaceMesh()
        self.irises = Irises() if irises else None

    def run(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.run_3d(X)[:2]

    def run_3d(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        points, scores = self.mesh.points3d(X)
        if self.irises is not None:
            points = np.concatenate([points, self.irises(X, points)], axis=1)
        return scale(points[..., :2].reshape(len(X), -1)), scores, points


class TunedMeshPredictor(Predictor):
    """A `mesh-tuned` run: its Keras net on faces framed as the training faces were; on crops
    cut from photographs, the tuned body's points read by the run's photo head (as a `mesh`
    run's PhotoHead reads the frozen mesh's)."""

    def __init__(self, net, columns: list[str], tta: bool, name: str, scheme,
                 photo_head: PhotoHead, photos: bool = False, mirror_axis=MIRROR_X):
        super().__init__(net, columns, tta, name, scheme,
                         photo_head.mirror_axis if photos else mirror_axis)
        self.photo_head, self.photos = photo_head, photos

    @property
    def gives_mesh(self) -> bool:  # on photos: the tuned body's 2D points
        return self.photos

    def run(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        return self.run_3d(X)[:2]

    def run_3d(self, X: np.ndarray) -> tuple[np.ndarray, None, np.ndarray | None]:
        """`run`, and on photos the tuned body's mesh points (N, 468, 2): x and y, no depth."""
        if not self.photos:
            return (*super().run(X), None)
        from ..stored.nets import predict_scaled

        points = predict_scaled(self.net.get_layer("body"), X)
        points = points.reshape(len(X), -1, 2).astype(np.float64)
        return self.photo_head(points), None, points

    def for_photos(self) -> TunedMeshPredictor:
        """The same run with its photo head, for the photo pipeline."""
        return TunedMeshPredictor(self.net, self.columns, self.tta, self.name, self.scheme,
                                  self.photo_head, photos=True, mirror_axis=self.mirror_axis)

    def export_net(self):
        """The net with a second output, the body's mesh points, and the photo head that
        reads them: an export detects on photographs as the run folder does. It takes faces
        framed as the mesh sees them (`backbone.frame`, done by the predictor that loads it):
        the framing inside the graph made LiteRT almost twice as slow (`net.unframed`)."""
        import base64

        import keras

        from .backbone import FRAMED
        from .net import unframed  # Keras: only where a run is exported

        body = unframed(self.net.get_layer("body"))
        image = keras.Input(body.input_shape[1:], name="image")
        points = body(image)
        net = keras.Model(image, [self.net.get_layer("head")(points), points],
                          name=self.net.name)
        return net, {"photo_head": base64.b64encode(self.photo_head.to_bytes()).decode(),
                     "input": FRAMED}


def load(run: RunFolder, recipe: Recipe) -> MeshPredictor:
    head = run.path / "head.npz"
    if not head.is_file():
        raise UserError(f"{run.path}: the mesh run has no head.npz yet (resume it with "
                        f"facekeypoints train --out {run.path} --resume)")
    return MeshPredictor(MeshHead.load(head), recipe.columns, recipe.tta, recipe.name,
                         PhotoHead.load(run.path / "photo_head.npz"),
                         scheme=run.scheme(recipe.columns))
