"""Faces through a video: find them once, then frame each next frame's face from its last
keypoints (as MediaPipe does), running the detector again only when a face is lost or every
`redetect_every` frames to pick up newcomers; keypoints smoothed over time by a One Euro filter.

The One Euro filter (Casiez, Roussel, Vogel, CHI 2012) is a low-pass filter whose cut-off rises
with speed: a still face's keypoints stop shaking, a moving face's keep up with little lag."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .. import geometry
from ..geometry import Box
from ..keypoints import IMAGE_SIZE, MEAN_SHAPE
from .blazeface import BlazeFace
from .detectors import HogDetector, find_faces
from .framing import align_transform
from .pipeline import Face, FacePipeline


class OneEuroFilter:
    """Smooths an array of values (any shape) over time; `t` in seconds."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t = 0.0

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.x is None or t <= self.t:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self.t
        dx = (x - self.x) / dt
        self.dx = self.dx + self._alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        self.x = self.x + self._alpha(cutoff, dt) * (x - self.x)
        self.t = t
        return self.x.copy()


@dataclass
class Track:
    box: Box
    points: np.ndarray  # (points, 2) photo pixels, as predicted (before smoothing)
    smoother: OneEuroFilter | None
    # as last predicted: its uncertainty, pose and depth (not smoothed)
    face: Face | None = None


def shape_error(points: np.ndarray, shape: np.ndarray = MEAN_SHAPE) -> float:
    """How far keypoints are from looking like a face: the RMS residual, in crop pixels, after
    the similarity that best puts them on the training faces' mean shape."""
    matrix = align_transform(points, shape, upright=True)
    placed = geometry.apply(matrix, points)
    return float(np.sqrt(((placed - shape) ** 2).sum(axis=1).mean()))


class FaceTracker:
    """Frames in (RGB, in order), faces out; `detections` counts the frames the detector ran on.

    A tracked face is lost when its keypoints stop looking like a face (`shape_error` above
    `max_shape_error` crop pixels), leave the frame, or jump in size, or when, every
    `verify_every` frames, the detector finds no face in a small window around it (a keypoint
    net places a face-like shape even on a wall); then the detector runs on the whole frame."""

    def __init__(self, pipeline: FacePipeline, smooth: bool = True, redetect_every: int = 30,
                 verify_every: int = 5, passes: int | None = None, max_shape_error: float = 6.0,
                 min_cutoff: float = 1.0, beta: float = 0.05):
        self.pipeline, self.smooth, self.redetect_every = pipeline, smooth, redetect_every
        # crops per face and frame, each framed on the last keypoints: one where fast
        self.passes = passes if passes is not None else 1 if pipeline.fast else \
            pipeline.model.track_passes
        self.verify_every, self.max_shape_error = verify_every, max_shape_error
        self.filter_settings = (min_cutoff, beta)
        self.tracks: list[Track] = []
        self.frame_index, self.detections = 0, 0
        detector = pipeline.detector  # the look for newcomers: the whole frame, coarsely
        self.quick = (HogDetector(upsample=0, fallback=False) if isinstance(detector, HogDetector)
                      else BlazeFace(detector.threshold, tiled=False)
                      if isinstance(detector, BlazeFace) else detector)

    def _new_track(self, face: Face) -> Track:
        smoother = OneEuroFilter(*self.filter_settings) if self.smooth else None
        return Track(face.box, face.keypoints, smoother, face)

    def _follow(self, rgb: np.ndarray, grey: np.ndarray) -> list[Track]:
        """Each track's face in this frame, framed from its last keypoints; the lost dropped."""
        if not self.tracks:
            return []
        points = [t.points for t in self.tracks]
        for _ in range(self.passes):  # a keypoint net follows a face only part of the way
            matrices = [align_transform(p, self.pipeline.shape, upright=self.pipeline.upright)
                        for p in points]
            points, unsure, meshes = self.pipeline.predict_at(grey, matrices)
        kept = []
        height, width = grey.shape
        verify = self.verify_every and self.frame_index % self.verify_every == 0
        for track, new, matrix, u, mesh in zip(self.tracks, points, matrices, unsure, meshes,
                                               strict=True):
            if verify and not self._face_near(rgb, track):
                continue
            cx, cy = new.mean(axis=0)
            inside = 0 <= cx < width and 0 <= cy < height
            side = IMAGE_SIZE / geometry.scale_of(matrix) / self.pipeline.framing.scale
            steady = 0.67 <= side / track.box.width <= 1.5
            face_like = shape_error(geometry.apply(matrix, new),
                                    self.pipeline.shape) <= self.max_shape_error
            if inside and steady and face_like:
                track.points = new
                track.box = _box_around(new, side, track.box.score)
                track.face = self.pipeline.face(track.box, new, u, mesh)
                kept.append(track)
        return kept

    def _face_near(self, image: np.ndarray, track: Track) -> bool:
        """Whether the detector sees a face in a window of twice the track's box around it, the
        window shrunk so the face is about 80 px wide (a few ms)."""
        box = track.box
        cx, cy = box.left + box.width / 2, box.top + box.height / 2
        half = box.width
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(image.shape[1], int(cx + half)), min(image.shape[0], int(cy + half))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return False
        factor = min(1.0, 80.0 / box.width)
        window = image[y0:y1, x0:x1]
        if factor < 1.0:
            window = cv2.resize(window, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        return bool(self.pipeline.detector(window))

    def __call__(self, rgb: np.ndarray, t: float | None = None) -> list[Face]:
        """The faces in the next frame; `t` its time in seconds (default: 30 frames a second)."""
        t = self.frame_index / 30.0 if t is None else t
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        followed = self._follow(rgb, grey)
        lost = len(followed) < len(self.tracks)
        due = self.redetect_every and self.frame_index % self.redetect_every == 0
        self.tracks = followed
        if lost or due or not self.tracks:
            self.detections += 1
            quick = due and not lost and self.tracks  # a look for newcomers: large faces only
            boxes = self.pipeline.scored_enough(
                find_faces(self.quick if quick else self.pipeline.detector, rgb))
            # a detection on a face already followed is not a new face: not predicted again
            boxes = [b for b in boxes
                     if not any(b.contains(track.points.mean(axis=0)) for track in self.tracks)]
            limit = self.pipeline.max_faces
            if boxes and (limit is None or len(self.tracks) < limit):
                new = self.pipeline.faces_in(rgb, boxes)
                if limit is not None:  # the best scored, as many as there is room for
                    new = sorted(new, key=lambda f: -f.box.score)[:limit - len(self.tracks)]
                self.tracks += [self._new_track(f) for f in new]
        self.frame_index += 1
        faces = []
        for track in self.tracks:
            shown = track.smoother(track.points, t) if track.smoother else track.points
            faces.append(replace(track.face, box=track.box, keypoints=shown)
                         if track.face else self.pipeline.face(track.box, shown))
        return faces


def _box_around(points: np.ndarray, width: float, score: float) -> Box:
    """A square box, as wide as a detector's would be, around tracked keypoints; its score the
    detector's when it found the face (so that a tracked face reads as found)."""
    cx, cy = points.mean(axis=0)
    return Box(float(cx - width / 2), float(cy - width / 2), float(width), float(width), score)

