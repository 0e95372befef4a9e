"""BlazeFace, the default face detector: its decoding (anchors, offsets, scores, weighted
suppression) against MediaPipe's own detections on real photos (tests/fixtures/
blazeface_mediapipe.json, recorded by tools/record_blazeface_fixture.py), the detector as run
against the same, a real face placed at a known box, and tiles that find a face too small for
the whole-photo pass. Tests that read photos use ../shared/data."""

import hashlib
import json
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


def _mediapipe_input(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float, np.ndarray]:
    """The square MediaPipe's ImageToTensorCalculator gives the model (the photo centred in a
    black square, warped to `side` with bilinear interpolation), the square's side in photo
    pixels and its top left corner in the photo: to project detections back, as MediaPipe does."""
    height, width = rgb.shape[:2]
    square = max(height, width)
    corner = np.array([(width - square) / 2, (height - square) / 2])
    scale = side / square
    warp = np.array([[scale, 0, -corner[0] * scale], [0, scale, -corner[1] * scale]])
    return cv2.warpAffine(rgb, warp, (side, side), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0), square, corner


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of two (left, top, width, height) boxes."""
    inter = np.prod(np.clip(np.minimum(a[:2] + a[2:], b[:2] + b[2:]) - np.maximum(a[:2], b[:2]),
                            0, None))
    return float(inter / (np.prod(a[2:]) + np.prod(b[2:]) - inter))


def _paired(theirs: list[dict], ours: list[tuple[np.ndarray, np.ndarray, float]], name: str):
    """Each of MediaPipe's faces with ours that overlaps it most, one to one."""
    assert len(ours) == len(theirs), f"{name}: {len(ours)} faces, MediaPipe {len(theirs)}"
    pairs = [(face, max(ours, key=lambda o, f=face: _iou(o[0], np.array(f["box"]))))
             for face in theirs]
    assert len({id(o) for _, o in pairs}) == len(pairs), f"{name}: two faces on one of ours"
    return pairs


MEDIAPIPE = json.loads((ROOT / "tests" / "fixtures" / "blazeface_mediapipe.json").read_text())


def test_decoding_gives_mediapipes_own_detections_on_real_photos():
    """Anchors, offsets, sigmoid scores and weighted suppression against MediaPipe's own
    detections (tools/record_blazeface_fixture.py, its Python solution) on group photos, one
    face, a small face and turned faces. Our models get the input MediaPipe makes (the photo
    centred in the square, bilinear), our `_Model` decodes, and the detections are projected
    back as MediaPipe does, at its thresholds (0.5 short range, 0.6 full range; ours are 0.5 for
    both). Measured: boxes and points within 0.16 px, scores within 0.0013 (XNNPACK and ONNX
    Runtime, and OpenCV's rounding of the warp, differ that much), hence 0.5 px and 0.005:
    anchors off by half a cell move faces 5-31 px on these photos, and one member too many in a
    weighted merge (MediaPipe's full range threshold taken as 0.5) 0.5-3 px."""
    assert MEDIAPIPE["mediapipe"] == "0.10.21" and "record_blazeface_fixture" in \
        MEDIAPIPE["command"]
    detector = blazeface.BlazeFace()
    compared = 0
    for photo in MEDIAPIPE["photos"]:
        rgb = reading.read_photo(SHARED / photo["file"])
        assert rgb.shape[:2] == (photo["height"], photo["width"]), photo["file"]
        for name, model in (("short", detector.short), ("full", detector.full)):
            side = model.spec.side
            square, size, corner = _mediapipe_input(rgb, side)
            found, scores = model(square, [(0, 0, side)], MEDIAPIPE["thresholds"][name])
            ours = []
            for merged, score in blazeface.weighted_nms(found, scores):
                merged = merged * size / side
                merged[0] += corner
                merged[2:] += corner
                ours.append((np.r_[merged[0] - merged[1] / 2, merged[1]], merged[2:], score))
            for face, (box, points, score) in _paired(photo[name], ours,
                                                      f"{photo['file']} {name}"):
                assert np.abs(box - face["box"]).max() < 0.5, (photo["file"], name, face)
                assert np.abs(points - face["points"]).max() < 0.5, (photo["file"], name, face)
                assert score == pytest.approx(face["score"], abs=0.005)
                compared += 1
    assert compared == 33  # every face of the fixture (none from full range on one photo)


def test_the_detector_as_run_finds_mediapipes_faces():
    """The detector as `detect` runs it, our own input (the photo at the square's top left,
    INTER_AREA when shrinking), against the same fixture. Photos up to FULL_ABOVE px get the
    short range model alone: MediaPipe's face, overlapping by 0.9 or more (measured 0.93-0.97),
    points within 8% of the box (measured 1-6%), scores within 0.1 (measured 0.02-0.06). Larger
    photos add the full range model at 0.5 and tiles, and merge all: every face MediaPipe's full
    range model finds is found (overlap measured 0.67-0.96), and more (7 of the 7 faces of
    2007_007763.jpg, where MediaPipe finds 6)."""
    detector = blazeface.BlazeFace()
    for photo in MEDIAPIPE["photos"]:
        rgb = reading.read_photo(SHARED / photo["file"])
        boxes = detector(rgb)
        ours = [(np.array([b.left, b.top, b.width, b.height]), b.points, b.score) for b in boxes]
        if max(rgb.shape[:2]) <= blazeface.FULL_ABOVE:
            for face, (box, points, score) in _paired(photo["short"], ours, photo["file"]):
                assert _iou(box, np.array(face["box"])) > 0.9, (photo["file"], face)
                error = np.linalg.norm(points - face["points"], axis=1).max()
                assert error < 0.08 * face["box"][2], (photo["file"], face)
                assert score == pytest.approx(face["score"], abs=0.1)
        else:
            assert len(ours) >= len(photo["full"]), photo["file"]
            for face in photo["full"]:
                best = max(_iou(box, np.array(face["box"])) for box, _, _ in ours)
                assert best > 0.6, (photo["file"], face)


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
