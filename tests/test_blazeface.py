"""BlazeFace, the default face detector: its SSD decoding and weighted suppression against
outputs built by hand, the shipped models on a real face placed at a known box, and tiles that
find a face too small for the whole-photo pass. Tests that read photos use ../shared/data."""

import hashlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from facekeypoints.photos import blazeface, reading
from facekeypoints.photos.detectors import find_faces
from facekeypoints.photos.scores import load_truth, match

from .conftest import ROOT, SHARED

YOUTUBE = SHARED / "photos" / "youtube"
GROUP = SHARED / "photos" / "dlib"


def test_anchors_are_the_grids_mediapipe_sets():
    short = blazeface.anchor_centres(blazeface.SHORT)
    full = blazeface.anchor_centres(blazeface.FULL)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # short: a 16x16 grid, two anchors per cell, then an 8x8 grid, six per cell
    assert np.allclose(short[0], short[1]) and np.allclose(short[0], [0.5 / 16, 0.5 / 16])
    assert np.allclose(short[2], [1.5 / 16, 0.5 / 16])
    assert np.allclose(short[512:518], [0.5 / 8, 0.5 / 8])
    assert np.allclose(full[-1], [47.5 / 48, 47.5 / 48])


def test_decoding_puts_a_box_made_by_hand_back_where_it_was_made():
    """Raw outputs written for one face, as the model writes them (offsets from an anchor in
    input pixels, the size absolute), come back as that face; a weaker, overlapping guess is
    merged into it, weighted by score, and a face elsewhere stays apart."""
    spec = blazeface.SHORT
    anchors = blazeface.anchor_centres(spec)
    raw = np.zeros((len(anchors), 16), np.float32)
    logits = np.full(len(anchors), -10.0, np.float32)
    face = np.array([[0.40, 0.45], [0.30, 0.30], [0.35, 0.40], [0.45, 0.40], [0.40, 0.48],
                     [0.40, 0.53], [0.27, 0.42], [0.53, 0.42]])  # centre, size, six points
    k = int(np.argmin(np.linalg.norm(anchors - face[0], axis=1)))
    raw[k] = ((face - np.vstack([anchors[k], [0, 0], np.tile(anchors[k], (6, 1))])) * 128).ravel()
    logits[k] = 4.0
    shifted = face + [0.02, 0.0]  # the same face seen by the next anchor, less sure
    raw[k + 1] = ((shifted - np.vstack([anchors[k + 1], [0, 0], np.tile(anchors[k + 1], (6, 1))]))
                  * 128).ravel()
    logits[k + 1] = 0.0
    other = face + [0.45, 0.0]
    far = int(np.argmin(np.linalg.norm(anchors - other[0], axis=1)))
    raw[far] = ((other - np.vstack([anchors[far], [0, 0], np.tile(anchors[far], (6, 1))]))
                * 128).ravel()
    logits[far] = 2.0
    scores = 1 / (1 + np.exp(-logits))
    keep = np.flatnonzero(scores >= 0.5)
    decoded = blazeface.decode(raw[keep], anchors[keep], spec.side)
    assert np.allclose(decoded[0], face, atol=1e-6)
    merged = blazeface.weighted_nms(decoded, scores[keep])
    assert len(merged) == 2
    (first, best), (second, _) = merged
    w = np.array([scores[k], scores[k + 1]])
    assert best == pytest.approx(scores[k])
    assert np.allclose(first, (w[0] * face + w[1] * shifted) / w.sum(), atol=1e-6)
    assert np.allclose(second, other, atol=1e-6)


def test_tiles_cover_the_photo_and_overlap():
    # the last two are narrower than a tile: their tiles run past that edge, black there
    for height, width in [(1200, 1600), (900, 700), (768, 3000), (300, 1000), (2000, 200)]:
        squares = blazeface.tiles(height, width, 384)
        covered = np.zeros((height, width), bool)
        for left, top, size in squares:
            assert size >= 384 and left >= 0 and top >= 0
            assert left + size <= width or (left == 0 and width < size)
            assert top + size <= height or (top == 0 and height < size)
            covered[top:top + size, left:left + size] = True
        assert covered.all()
    assert blazeface.tiles(300, 300, 384) == []  # nothing to tile
    model = blazeface.BlazeFace().full
    left, top, size = blazeface.tiles(300, 1000, 384)[-1]
    square = model._square(np.full((300, 1000, 3), 255, np.uint8), left, top, size)
    rows = round(300 * model.spec.side / size)  # the photo's part of the square, then black
    assert (square[:rows] == 1).all() and (square[rows:] == -1).all()


def _face_at(iod: float, size: tuple[int, int], at: tuple[int, int]):
    """A real youtube face scaled to `iod` px between the eyes, pasted into a group photo
    resized to `size` (w, h) with its crop's top left at `at`; its true keypoints there."""
    truth = next(t for t in load_truth(YOUTUBE / "keypoints15.csv")
                 if t.file == "Lincoln_Chafee_52.jpg")
    f = iod / truth.interocular
    face = cv2.resize(reading.read_photo(YOUTUBE / truth.file), None, fx=f, fy=f,
                      interpolation=cv2.INTER_AREA)
    canvas = cv2.resize(reading.read_photo(GROUP / "2008_001322.jpg"), size)
    x, y = at
    canvas[y:y + face.shape[0], x:x + face.shape[1]] = face
    return canvas, truth.points * f + at


def test_a_real_face_placed_at_a_known_box_is_found_there_with_its_eyes_and_mouth():
    """The short range model (photos up to FULL_ABOVE px): box round the true keypoints, eyes
    and mouth within a fifth of the eye distance of the true ones (left/right as MediaPipe's:
    the subject's right eye first, on the image's left)."""
    photo, points = _face_at(30, (360, 270), (150, 40))
    boxes = blazeface.BlazeFace()(photo)
    hit = [b for b in boxes if b.contains(points.mean(axis=0))]
    assert len(hit) == 1
    box = hit[0]
    assert 30 * 1.2 < box.width < 30 * 3.5 and box.score > 0.5
    eyes, mouth = box.points[[1, 0]], box.points[3]
    assert np.linalg.norm(eyes - points[[0, 1]], axis=1).max() < 0.2 * 30
    true_mouth = points[[13, 14]].mean(axis=0)
    assert np.linalg.norm(mouth - true_mouth) < 0.25 * 30


def test_tiles_find_a_small_face_that_the_whole_photo_pass_misses():
    photo, points = _face_at(16, (1600, 1200), (200, 900))
    centre = points.mean(axis=0)
    whole = blazeface.BlazeFace(tiled=False)(photo)
    tiled = blazeface.BlazeFace()(photo)
    assert not any(b.contains(centre) for b in whole)
    assert sum(b.contains(centre) for b in tiled) == 1


def test_every_face_of_the_group_photos_and_the_youtube_photos_is_found():
    detector = blazeface.BlazeFace()
    for folder in (GROUP, YOUTUBE):
        by_file: dict[str, list] = {}
        for t in load_truth(folder / "keypoints15.csv"):
            by_file.setdefault(t.file, []).append(t)
        if folder == YOUTUBE:
            by_file = dict(list(by_file.items())[::8])
        for name, truths in by_file.items():
            boxes = find_faces(detector, reading.read_photo(folder / name))
            assert None not in match(truths, boxes), name


def test_the_shipped_detectors_are_the_files_their_notice_names():
    folder = ROOT / "src" / "facekeypoints" / "pretrained"
    notice = (folder / "NOTICE").read_text()
    for name in ("blazeface_short.onnx", "blazeface_full.onnx"):
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() in notice, name
    assert "tools/convert_face_detectors.py" in notice


def test_detection_needs_no_tensorflow():
    code = ("import sys, numpy as np; from facekeypoints.photos.blazeface import BlazeFace; "
            "BlazeFace()(np.zeros((500, 900, 3), np.uint8)); "
            "print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split() == ["False"], done.stderr[-2000:]
