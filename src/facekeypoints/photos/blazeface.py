"""BlazeFace, MediaPipe's face detector (Apache-2.0; `pretrained/blazeface_{short,full}.onnx`,
converted by tools/convert_face_detectors.py), decoded here in NumPy as MediaPipe's graphs set it:
a box and six points (eyes, nose tip, mouth, ear tragions) as offsets from fixed anchors, scores
through a sigmoid, overlapping detections merged by weighted non-maximum suppression.

Which passes a photo gets depends on its size. The short range model sees the whole photo at
128x128: it finds faces with at least about 5% of the photo's longer side between the eyes, and
is the only pass on photos up to FULL_ABOVE pixels (about 2 ms). A larger photo may hold smaller
faces: the full range model (192x192) sees the whole of it, which finds faces down to about 3%
of its longer side between the eyes in colour (the 11-15 px of the 500 px group photos), and
tiles of it, each half its shorter side (at least twice the model's side) and overlapping by a
quarter, all in one call: they find smaller faces in large photos, and the faces of grey photos
that the whole-photo pass misses (4 of the 18 group faces). The detections of every pass are
merged. Measured in docs/photos.md."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from .. import onnx_runtime
from ..geometry import Box


@dataclass(frozen=True)
class Spec:
    """One model's input side and anchor grid, as MediaPipe's face_detection_*.pbtxt set them:
    `anchors` anchors at the centre of every cell of each stride's grid, all of size 1."""

    file: str
    side: int
    strides: tuple[int, ...]
    anchors: tuple[int, ...]  # per cell, for each stride


SHORT = Spec("blazeface_short.onnx", 128, (8, 16), (2, 6))
FULL = Spec("blazeface_full.onnx", 192, (4,), (1,))
THRESHOLD = 0.5  # face score; MediaPipe's Python default (min_detection_confidence)
NMS_IOU = 0.3
FULL_ABOVE = 2 * FULL.side  # photos larger than this also get the full range model and tiles
EDGE = 0.02  # a tile's detection this close to its edge is cut by it: the whole photo's, or none


def anchor_centres(spec: Spec) -> np.ndarray:
    """(A, 2) anchor centres in [0, 1], in the order of the model's outputs."""
    centres = []
    for stride, per_cell in zip(spec.strides, spec.anchors, strict=True):
        cells = -(-spec.side // stride)
        y, x = np.mgrid[0:cells, 0:cells]
        grid = np.stack([x, y], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat((grid + 0.5) / cells, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres)


def decode(raw: np.ndarray, anchors: np.ndarray, side: int) -> np.ndarray:
    """Raw box outputs (A, 16) of anchors (A, 2) -> detections (A, 8, 2): box centre, box size,
    then the six points, all in [0, 1] of the model's input."""
    values = raw.reshape(len(raw), 8, 2) / side
    values[:, 0] += anchors  # the centre and the points are offsets from the anchor, the size not
    values[:, 2:] += anchors[:, None]
    return values


def weighted_nms(detections: np.ndarray, scores: np.ndarray,
                 iou: float = NMS_IOU) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: the best remaining detection and all that overlap it by
    more than `iou` become one, their coordinates averaged by score, the best score kept."""
    order = np.argsort(-scores, kind="stable")
    detections, scores = detections[order], scores[order]
    low = detections[:, 0] - detections[:, 1] / 2
    high = detections[:, 0] + detections[:, 1] / 2
    area = np.prod(high - low, axis=1)
    remaining = np.arange(len(scores))
    merged = []
    while len(remaining):
        top = remaining[0]
        inter = np.prod(np.clip(np.minimum(high[top], high[remaining])
                                - np.maximum(low[top], low[remaining]), 0, None), axis=1)
        overlap = inter / (area[top] + area[remaining] - inter + 1e-12)
        group = remaining[(overlap > iou) | (remaining == top)]
        weights = scores[group]
        merged.append(((detections[group] * weights[:, None, None]).sum(0) / weights.sum(),
                       float(scores[top])))
        remaining = remaining[(overlap <= iou) & (remaining != top)]
    return merged


def tiles(height: int, width: int, side: int) -> list[tuple[int, int, int]]:
    """Squares (left, top, size) that cover a photo: half its shorter side (at least `side`),
    overlapping by a quarter."""
    tile = max(side, min(height, width) // 2)
    if tile >= max(height, width):
        return []
    step = max(1, tile * 3 // 4)

    def starts(length: int) -> list[int]:
        last = max(length - tile, 0)
        return sorted({*range(0, last, step), last})

    return [(left, top, tile) for top in starts(height) for left in starts(width)]


class _Model:
    """One BlazeFace model on ONNX Runtime: squares of a photo in, detections in photo pixels."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        path = Path(str(resources.files("facekeypoints") / "pretrained" / spec.file))
        # its threads sleep when done instead of spinning against the keypoint model's next
        # (0.6-0.9 ms a photo, bench/photo_pipeline.py's loop, two cores)
        self.session = onnx_runtime.session(path, spinning=False)
        self.input = self.session.get_inputs()[0].name
        self.anchors = anchor_centres(spec)

    def _square(self, rgb: np.ndarray, left: int, top: int, size: int) -> np.ndarray:
        """The square of the photo at the model's side, in [-1, 1], zero-padded (black) where
        it runs past the photo's edge (a whole photo is letterboxed so)."""
        crop = rgb[top:top + size, left:left + size]
        scale = self.spec.side / size
        h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
        resized = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA if scale < 1
                             else cv2.INTER_LINEAR)
        out = np.full((self.spec.side, self.spec.side, 3), -1.0, np.float32)
        out[:h, :w] = resized
        out[:h, :w] *= 1 / 127.5
        out[:h, :w] -= 1.0
        return out

    def __call__(self, rgb: np.ndarray, squares: list[tuple[int, int, int]],
                 threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Detections (K, 8, 2) in photo pixels and their scores (K,), from every square; a
        tile's only where its edge does not cut them."""
        batch = np.stack([self._square(rgb, *square) for square in squares])
        raw, logits = self.session.run(None, {self.input: batch})
        whole = max(rgb.shape[:2])
        found, found_scores = [], []
        for (left, top, size), r, lg in zip(squares, raw, logits, strict=True):
            scores = 1 / (1 + np.exp(-np.clip(lg[:, 0], -80, 80)))
            keep = np.flatnonzero(scores >= threshold)  # decode only these
            values = decode(r[keep], self.anchors[keep], self.spec.side)
            if size < whole:
                low = values[:, 0] - values[:, 1] / 2
                high = values[:, 0] + values[:, 1] / 2
                inside = (low >= EDGE).all(axis=1) & (high <= 1 - EDGE).all(axis=1)
                values, keep = values[inside], keep[inside]
            values = values * size
            values[:, 0] += (left, top)
            values[:, 2:] += (left, top)
            found.append(values)
            found_scores.append(scores[keep])
        return np.concatenate(found), np.concatenate(found_scores)


class BlazeFace:
    """Grey or RGB photos in, face boxes out, each with BlazeFace's six points (`Box.points`:
    the subject's right eye, left eye, nose tip, mouth centre, right and left ear tragion)."""

    name = "blazeface"
    _models: dict[str, _Model] = {}  # sessions shared by every detector of a process

    def __init__(self, threshold: float = THRESHOLD, tiled: bool = True) -> None:
        for spec in (SHORT, FULL):
            if spec.file not in BlazeFace._models:
                BlazeFace._models[spec.file] = _Model(spec)
        self.short, self.full = (BlazeFace._models[s.file] for s in (SHORT, FULL))
        self.threshold, self.tiled = threshold, tiled
        # False: a large photo gets the full range passes only where the short range model
        # finds no face (bench/pipeline_passes.py measures what that loses)
        self.full_always = True

    def __call__(self, image: np.ndarray) -> list[Box]:
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image
        height, width = rgb.shape[:2]
        whole = (0, 0, max(height, width))
        found = [self.short(rgb, [whole], self.threshold)]
        if max(height, width) > FULL_ABOVE and (self.full_always or not len(found[0][1])):
            squares = [whole, *(tiles(height, width, 2 * FULL.side) if self.tiled else [])]
            found.append(self.full(rgb, squares, self.threshold))
        detections = np.concatenate([d for d, _ in found])
        scores = np.concatenate([s for _, s in found])
        boxes = []
        for merged, score in weighted_nms(detections, scores):
            (cx, cy), (w, h) = merged[0], merged[1]
            boxes.append(Box(float(cx - w / 2), float(cy - h / 2), float(w), float(h), score,
                             merged[2:].astype(np.float64)))
        return boxes
