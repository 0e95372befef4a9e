"""The photo pipeline: find faces, frame each as the training faces are framed, predict, re-frame
each face upright on its own keypoints and predict again, and map the keypoints back to the
photo's own pixels.

How many passes pay for themselves was measured (bench/framing.py, docs/photos.md): a face
framed on BlazeFace's eyes and mouth needs no re-framing (it gains nothing), a face framed on a
box two passes; each pass with its mirror image (flip TTA) where the model has it. `fast` keeps
the first pass alone, without the mirror image."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .. import geometry
from ..geometry import Box
from ..keypoints import IMAGE_SIZE, KEYPOINTS, unscale
from ..mesh.backbone import POINTS
from ..mesh.iris import iris_measures
from ..mesh.pose import POSE_KEYS, head_pose
from .detectors import find_faces, make_detector
from .framing import FRAMING, Framing, align_transform, crop_face, first_transform
from .reading import PhotoError, read_photo

FACE_SCORE = 0.5  # the face mesh's score of a face (true faces: 0.96 or more, shared photos)
# BlazeFace finds the mesh checks: on the shared photos every find it rejected scored 0.52-0.73,
# and 96% of all finds score 0.8 or more (bench/face_check.py); HOG's and the cascade's scores
# are on other scales, so their every find is checked
CHECK_BELOW = {"blazeface": 0.8}


@dataclass
class Face:
    box: Box
    keypoints: np.ndarray  # (points, 2) photo pixels, in the order of `names`
    names: tuple[str, ...] = KEYPOINTS  # the model's points (its scheme's, or some of them)
    lines: tuple[tuple[int, ...], ...] = ()  # the scheme's lines to draw, as indices
    # (points,) photo pixels: the radius about each keypoint that holds its true place about
    # 68% of the time (docs/uncertainty.md); None where the model has no measure of it
    uncertainty: np.ndarray | None = None
    # yaw, pitch, roll in degrees (mesh/pose.py), for mesh-based models; None for the others
    pose: tuple[float, float, float] | None = None
    # (points,) each keypoint's depth in photo pixels, where the points are the mesh's own
    # (mesh468, mesh478): the mesh's z, relative to the face's centre, smaller nearer the camera
    z: np.ndarray | None = None

    def as_dict(self) -> dict:
        out = {"box": {"left": round(self.box.left, 1), "top": round(self.box.top, 1),
                       "width": round(self.box.width, 1), "height": round(self.box.height, 1)},
               "score": round(self.box.score, 4),
               "keypoints": {k: [round(float(x), 2), round(float(y), 2)]
                             for k, (x, y) in zip(self.names, self.keypoints, strict=True)},
               # null: the model has no calibrated uncertainty (docs/uncertainty.md)
               "uncertainty": None if self.uncertainty is None else {
                   k: round(float(u), 2) for k, u in zip(self.names, self.uncertainty,
                                                         strict=True)}}
        out.update(self.extras())
        return out

    def extras(self) -> dict:
        """What a face carries beside its box, keypoints and uncertainty, where its model gives
        it: `z` by keypoint, `pose`, and `irises` (mesh478: each pupil and iris radius)."""
        out: dict = {}
        if self.z is not None:
            out["z"] = {k: round(float(z), 2) for k, z in zip(self.names, self.z, strict=True)}
        if self.pose is not None:
            out["pose"] = {k: round(float(v), 1) for k, v in zip(POSE_KEYS, self.pose,
                                                                 strict=True)}
        irises = iris_measures(self.names, self.keypoints)
        if irises:
            out["irises"] = irises
        return out


@dataclass
class PhotoResult:
    file: str
    width: int
    height: int
    faces: list[Face] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


class FacePipeline:
    """Detector + framing + keypoint model, applied to RGB frames."""

    def __init__(self, model, detector_name: str = "blazeface", framing: Framing | None = None,
                 refine: int | None = None, upright: bool = True, fast: bool = False,
                 min_score: float | None = None, max_faces: int | None = None,
                 face_check: bool = True):
        # a model with a head of its own for photo crops (the face mesh) uses it here
        self.calibration = model.calibration  # its uncertainty's, where it has one
        self.model = model.for_photos()
        self.detector_name = detector_name
        self.detector = make_detector(detector_name)
        # faces whose detector score is below `min_score` are dropped; of the rest at most
        # `max_faces`, the best scored
        self.min_score, self.max_faces = min_score, max_faces
        # a model with no face score of its own (a CNN run) has each face checked by the face
        # mesh's: a detector's false find (a shirt collar at 0.62) is otherwise a face
        self.checker = None
        if face_check and not self.model.scores_faces:
            from ..mesh.backbone import FaceMesh

            self.checker = FaceMesh()
        self.framing = framing or FRAMING[detector_name]
        self.fast = fast
        # passes that re-frame each face on its own predicted keypoints (None: by detector)
        self.refine = 0 if fast else refine
        self.tta = False if fast else None  # None: the model's own choice
        self.upright = upright  # re-framing also turns a face that rolls upright
        self.names = tuple(self.model.keypoints)
        self.shape = self.model.mean_shape  # re-framing puts each face's points on it
        self.lines = tuple(tuple(line) for line in self.model.scheme_lines())

    def face(self, box: Box, points: np.ndarray, uncertainty: np.ndarray | None = None,
             mesh: np.ndarray | None = None) -> Face:
        """A found face; `mesh` its face mesh's (468, 3) points in photo pixels (478 with the
        irises; x and y alone from a tuned mesh), where the model is mesh-based: its head pose,
        and its keypoints' depth where they are the mesh's own points."""
        if mesh is None:
            return Face(box, points, self.names, self.lines, uncertainty)
        z = mesh[:, 2] if self.model.points_are_mesh else None
        pose = tuple(float(a) for a in head_pose(mesh[None, :POINTS])[0])
        return Face(box, points, self.names, self.lines, uncertainty, pose=pose, z=z)

    def faces_in(self, rgb: np.ndarray, boxes: list[Box] | None = None) -> list[Face]:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        # a box given by hand (score 1) is no detector's confidence: with a model that has no
        # face score (the tuned mesh, a CNN) the face mesh checks each
        limit = float("inf") if boxes is not None else CHECK_BELOW.get(self.detector_name,
                                                                         float("inf"))
        if boxes is None:
            boxes = self.scored_enough(find_faces(self.detector, rgb))
        if not boxes:
            return []
        matrices = [first_transform(b, self.framing) for b in boxes]
        points, seen, unsure, meshes = self._predict_seen(grey, matrices,
                                                          [b.score < limit for b in boxes])
        if self.max_faces is not None and seen.sum() > self.max_faces:
            best = sorted(np.flatnonzero(seen), key=lambda i: -boxes[i].score)
            seen = np.isin(np.arange(len(boxes)), best[:self.max_faces])
        # what the model (or the face mesh, checking a model with no face score) sees no face in
        # is dropped: on the shared photos every true face scores 0.96 or more, BlazeFace's
        # extra finds 0.35 or less
        boxes, points, matrices, unsure, meshes = (
            [x[i] for i in np.flatnonzero(seen)] for x in (boxes, points, matrices, unsure, meshes))
        for _ in range(self.passes_after(boxes)):
            matrices = [align_transform(p, self.shape, upright=self.upright) for p in points]
            refined, new_unsure, remeshed = self.predict_at(grey, matrices)
            keep = [_plausible(new, box, m)
                    for new, box, m in zip(refined, boxes, matrices, strict=True)]
            points, unsure, meshes = (
                [new if k else old for new, old, k in zip(news, olds, keep, strict=True)]
                for news, olds in ((refined, points), (new_unsure, unsure), (remeshed, meshes)))
        return [self.face(b, p, u, m)
                for b, p, u, m in zip(boxes, points, unsure, meshes, strict=True)]

    def scored_enough(self, boxes: list[Box]) -> list[Box]:
        """The detector's finds at `min_score` or more (a box given by hand is not filtered)."""
        if self.min_score is None:
            return boxes
        return [b for b in boxes if b.score >= self.min_score]

    def passes_after(self, boxes: list[Box]) -> int:
        if self.refine is not None:
            return self.refine
        return 0 if all(b.points is not None for b in boxes) else 2

    def predict_at(self, grey: np.ndarray, matrices: list[np.ndarray]
                   ) -> tuple[list[np.ndarray], list[np.ndarray | None], list[np.ndarray | None]]:
        """Keypoints in photo pixels for each crop, their uncertainties and the faces' mesh
        points (see below)."""
        points, _, unsure, meshes = self._predict_seen(grey, matrices)
        return points, unsure, meshes

    def _predict_seen(self, grey: np.ndarray, matrices: list[np.ndarray],
                      check: list[bool] | None = None
                      ) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray | None],
                                 list[np.ndarray | None]]:
        """Keypoints in photo pixels for each crop, whether the model saw a face in it (the
        face mesh asked too for the crops `check` names, where the model has no face score),
        each point's uncertainty in photo pixels (None where the model has no calibration;
        read from the mirror image where it runs, else from the crop's scale alone), and each
        face's mesh points (468, 3) in photo pixels where the model is mesh-based."""
        crops = np.stack([crop_face(grey, m) for m in matrices])[..., None]
        scaled, seen, spread, mesh = self.model.predict_all(crops, tta=self.tta)
        if check is not None and self.checker is not None and any(check):
            asked = np.flatnonzero(check)
            seen = seen.copy()
            seen[asked] &= self.checker(crops[asked])[1] >= FACE_SCORE
        pred = np.clip(unscale(scaled), *self.model.scheme.bounds)  # (n, columns) crop pixels
        unsure = [None] * len(matrices) if self.calibration is None else [
            u / geometry.scale_of(m)
            for u, m in zip(self.calibration(spread, len(matrices)), matrices, strict=True)]
        back = [geometry.invert(m) for m in matrices]
        points = [geometry.apply(b, p.reshape(-1, 2)) for p, b in zip(pred, back, strict=True)]
        if mesh is None:
            return points, seen, unsure, [None] * len(points)
        # x, y as the keypoints; z scaled as they are (a similarity: one scale), where given
        meshes = [np.column_stack([geometry.apply(b, m[:, :2]), m[:, 2:] * geometry.scale_of(b)])
                  for m, b in zip(mesh, back, strict=True)]
        return points, seen, unsure, meshes

    def photo(self, path: Path) -> PhotoResult:
        start = time.perf_counter()
        try:
            rgb = read_photo(path)
        except PhotoError as e:
            return PhotoResult(str(path), 0, 0, error=str(e))
        faces = self.faces_in(rgb)
        return PhotoResult(str(path), rgb.shape[1], rgb.shape[0], faces,
                           seconds=time.perf_counter() - start)


def _plausible(points: np.ndarray, box: Box, matrix: np.ndarray) -> bool:
    """A re-framed face must stay in its detector box at a size near the box's, else re-framing
    has drifted (a poor first guess) and the earlier keypoints are kept."""
    side = IMAGE_SIZE / geometry.scale_of(matrix)
    return box.contains(points.mean(axis=0)) and 0.6 * box.width <= side <= 2.0 * box.width
