"""`fk.Landmarker`, the one object that finds faces and keypoints: every kind of image a person
holds gives the same points, faces given by hand, the options, faces followed through frames,
bad input as one line; `fk.detect` and the `detect` job go through it."""

import doctest
import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facekeypoints as fk
from facekeypoints import api
from facekeypoints.photos import landmarker as landmarker_module

from .conftest import ROOT, SHARED

GROUP = SHARED / "photos" / "dlib" / "2007_007763.jpg"  # seven faces
ONE = SHARED / "photos" / "youtube" / "Lincoln_Chafee_52.jpg"
BUILTIN = Path(fk.__file__).parent / "pretrained" / "builtin"


@pytest.fixture(scope="module")
def landmarker():
    return fk.Landmarker()


@pytest.fixture(scope="module")
def group(landmarker):
    return landmarker.detect(GROUP)


def _rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _matched(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each face of `a`, the largest distance of its points from b's nearest face."""
    return np.array([np.abs(b - face).max(axis=(1, 2)).min() for face in a])


def test_a_path_a_pil_image_an_rgb_array_and_bgr_with_color_bgr_give_the_same_points(
        landmarker, group):
    assert group.points.shape == (7, 15, 2) and group.names == tuple(fk.KEYPOINTS)
    rgb = _rgb(GROUP)
    for image, color in [(Image.open(GROUP), "rgb"), (rgb, "rgb"),
                         (np.ascontiguousarray(rgb[..., ::-1]), "bgr"), (rgb[..., ::-1], "bgr")]:
        found = landmarker.detect(image, color=color)
        np.testing.assert_array_equal(found.points, group.points)
        np.testing.assert_array_equal(found.boxes, group.boxes)
    # OpenCV's BGR taken as RGB is a different picture to the detector: boxes move
    as_rgb = landmarker.detect(rgb[..., ::-1])
    assert len(as_rgb) != len(group) or not np.array_equal(as_rgb.boxes, group.boxes)


def test_a_grey_photo_finds_the_same_faces_at_nearly_the_same_points(landmarker, group):
    grey = np.asarray(Image.open(GROUP).convert("L"))
    for image in (grey, grey[..., None], Image.open(GROUP).convert("L")):
        found = landmarker.detect(image)
        assert len(found) == len(group)
        assert _matched(found.points, group.points).max() < 3.0  # px, faces ~40 px wide


def test_the_result_is_its_faces_as_arrays_and_as_detects_record(landmarker, group, tmp_path):
    assert len(group) == 7 and [f.box.score for f in group] == group.scores.tolist()
    assert group.boxes.shape == (7, 4) and group.scores.shape == (7,)
    assert np.array_equal(group[0].keypoints, group.points[0])
    assert (group.width, group.height) == Image.open(GROUP).size
    assert (group.boxes[:, 2:] > 10).all() and ((group.scores > 0.5) & (group.scores <= 1)).all()
    summary = fk.detect_files([GROUP], out=tmp_path / "out", draw=False, progress=False,
                              log=None)
    assert summary["faces"] == 7
    written = (tmp_path / "out" / "keypoints.json").read_text()
    assert written == json.dumps([group.as_dict()], indent=1) + "\n"  # byte for byte
    nothing = landmarker.detect(np.zeros((120, 160, 3), np.uint8))
    assert len(nothing) == 0 and nothing.points.shape == (0, 15, 2)
    assert nothing.boxes.shape == (0, 4) and nothing.as_dict()["faces"] == []


def test_boxes_given_by_hand_skip_the_detector(landmarker, group):
    rgb = _rgb(GROUP)
    two = landmarker.detect(rgb, boxes=group.boxes[:2].tolist())
    assert len(two) == 2 and (two.scores == 1.0).all()  # a box given by hand: score 1
    np.testing.assert_array_equal(two.boxes, group.boxes[:2])
    width = group.boxes[:2, 2]
    assert (np.abs(two.points - group.points[:2]).max(axis=(1, 2)) < 0.15 * width).all()
    one = landmarker.detect(rgb, boxes=tuple(group.boxes[3]))  # one box, as a flat tuple
    assert len(one) == 1 and _matched(one.points, group.points[3:4])[0] < 0.15 * width.max()
    assert len(landmarker.detect(rgb, boxes=[])) == 0  # no faces given: none looked for
    assert len(landmarker.detect(rgb, boxes=np.zeros((0, 4)))) == 0
    # a result's faces' boxes are boxes too
    np.testing.assert_array_equal(landmarker.detect(rgb, boxes=[f.box for f in two]).points,
                                  two.points)
    # a box on no face (the sky above them): the model sees no face there, and says so
    assert len(landmarker.detect(rgb, boxes=[[0, 0, 40, 40]])) == 0


def test_max_faces_keeps_the_best_scored_and_min_score_drops_the_rest(group):
    best = fk.Landmarker(max_faces=2).detect(GROUP)
    assert len(best) == 2
    np.testing.assert_array_equal(np.sort(best.scores), np.sort(group.scores)[-2:])
    cut = float(np.sort(group.scores)[3])  # between the 4th and 5th lowest scores
    kept = fk.Landmarker(min_score=cut).detect(GROUP)
    assert len(kept) == int((group.scores >= cut).sum()) == 4
    assert (kept.scores >= cut).all()
    assert len(fk.Landmarker(min_score=1.0).detect(GROUP)) == 0


def _moving(rgb: np.ndarray, frames: int, step: int) -> list[np.ndarray]:
    """A real face moving right by `step` pixels a frame across a wider grey canvas."""
    height, width = rgb.shape[:2]
    canvas = np.full((height, width + frames * step, 3), 90, np.uint8)
    out = []
    for i in range(frames):
        frame = canvas.copy()
        frame[:, i * step:i * step + width] = rgb
        out.append(frame)
    return out


def test_track_follows_a_moving_face_by_its_timestamps():
    rgb, step = _rgb(ONE), 6
    frames = _moving(rgb, 12, step)
    still = fk.Landmarker().detect(frames[0]).points[0]
    raw, smooth = fk.Landmarker(smooth=False), fk.Landmarker()
    lag = []
    for i, frame in enumerate(frames):
        a, b = raw.track(frame, 33.3 * i), smooth.track(frame, 33.3 * i)
        assert len(a) == len(b) == 1 and a.points.shape == (1, 15, 2)
        moved = (a.points[0] - still).mean(axis=0)
        assert abs(moved[0] - step * i) < 1.5 and abs(moved[1]) < 1.5, (i, moved)
        lag.append(a.points[0, :, 0].mean() - b.points[0, :, 0].mean())
    assert 0 < lag[-1] < step * 2  # smoothed: behind the moving face, but following it
    # a still face: the smoothed points settle on the raw ones
    for i in range(12, 40):
        a, b = raw.track(frames[-1], 33.3 * i), smooth.track(frames[-1], 33.3 * i)
    assert np.abs(a.points - b.points).max() < 0.3
    with pytest.raises(ValueError, match=r"timestamp_ms 1000 is not after the last frame's "
                                         r"\(1298.7\).*reset\(\)"):
        smooth.track(frames[0], 1000)
    smooth.reset()  # a new video may start its clock again
    assert len(smooth.track(frames[0], 0)) == 1


def test_track_takes_bgr_frames_as_opencv_reads_them():
    rgb = _rgb(ONE)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    a, b = fk.Landmarker(smooth=False), fk.Landmarker(smooth=False)
    for i in range(3):
        np.testing.assert_array_equal(a.track(rgb, 40 * i).points,
                                      b.track(bgr, 40 * i, color="bgr").points)


BAD = [
    (lambda rgb: rgb.astype(np.float32) / 255, r"type float32 .*expected uint8"),
    (lambda rgb: rgb[..., :2], r"shape \(\d+, \d+, 2\): expected \(height, width, 3\)"),
    (lambda rgb: np.zeros((0, 10, 3), np.uint8), r"shape \(0, 10, 3\)"),
    (lambda rgb: rgb.tolist(), r"image of type list: expected a path, a PIL image"),
    (lambda rgb: Image.new("La", (20, 10)), r"mode La has no conversion to RGB"),
]


@pytest.mark.parametrize("make, message", BAD)
def test_an_image_it_cannot_take_is_one_line_naming_what_was_expected(landmarker, make,
                                                                      message):
    image = make(_rgb(ONE))
    for call in (lambda: landmarker.detect(image), lambda: landmarker.track(image, 1)):
        with pytest.raises(ValueError, match=message) as raised:
            call()
        assert "\n" not in str(raised.value)


@pytest.mark.parametrize("boxes, message", [
    ([[1, 2, 3]], r"boxes of shape \(1, 3\): expected \(left, top, width, height\)"),
    ([[10, 10, 0, 20]], r"boxes\[0\] \(10, 10, 0, 20\): .*width and height above 0"),
    ([[10, 10, 20, 20], [10, 10, float("nan"), 5]], r"boxes\[1\] .*finite"),
    ([[5000, 10, 20, 20]], r"boxes\[0\] .*outside the 157x196 image"),
    ([["a", 1, 2, 3]], r"boxes: expected a list of \(left, top, width, height\)"),
    ([[]], r"boxes of shape \(1, 0\): expected"),
    (np.zeros((3, 0)), r"boxes of shape \(3, 0\): expected"),
    ([[0, 0, 1e6, 1e6]], r"boxes\[0\] .*over four times the 157x196 image"),
])
def test_bad_boxes_are_one_line(landmarker, boxes, message):
    with pytest.raises(ValueError, match=message):
        landmarker.detect(ONE, boxes=boxes)


@pytest.mark.parametrize("options, message", [
    ({"detector": "yolo"}, r"detector 'yolo': expected one of blazeface, hog, haar"),
    ({"min_score": 1.5}, r"min_score 1.5: expected a number from 0 to 1"),
    ({"max_faces": 0}, r"max_faces 0: expected a whole number of 1 or more"),
    ({"fast": "yes"}, r"fast 'yes': expected True or False"),
])
def test_bad_options_are_one_line_before_anything_loads(options, message):
    with pytest.raises(ValueError, match=message):
        fk.Landmarker(**options)


def test_bad_colors_timestamps_and_missing_files(landmarker):
    rgb = _rgb(ONE)
    with pytest.raises(ValueError, match=r"color 'BGR': expected 'rgb' or 'bgr'"):
        landmarker.detect(rgb, color="BGR")
    with pytest.raises(ValueError, match=r"timestamp_ms nan: expected a finite number"):
        fk.Landmarker().track(rgb, float("nan"))
    with pytest.raises(fk.api.UserError, match=r"nothing\.jpg: no such file"):
        landmarker.detect(SHARED / "nothing.jpg")


def test_fk_detect_reuses_one_landmarker_per_model_and_settings(monkeypatch):
    monkeypatch.setattr(api, "_THREAD", threading.local())
    first = fk.detect(GROUP, max_faces=3)
    again = fk.detect(ONE, max_faces=3)
    assert len(api._kept()) == 1 and len(first) == 3 and len(again) == 1
    (made,) = [lm for _, lm in api._kept().values()]
    assert made.max_faces == 3
    np.testing.assert_array_equal(first.points, made.detect(GROUP).points)
    fk.detect(ONE, fast=True)  # other settings: another landmarker
    assert len(api._kept()) == 2
    mine = fk.Landmarker(max_faces=1)  # one of the user's own is used as it is
    assert len(fk.detect(GROUP, mine)) == 1 and len(api._kept()) == 2


def test_fk_detect_from_threads_gives_each_thread_its_own_detectors(monkeypatch):
    """OpenCV's cascades fail when two threads share one (a cv2.error from its scale data)."""
    monkeypatch.setattr(api, "_THREAD", threading.local())
    photos = sorted((SHARED / "photos" / "youtube").glob("*.jpg"))[:6] * 2
    serial = [fk.detect(p, detector="haar").points for p in photos]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda p: fk.detect(p, detector="haar").points, photos))
    for a, b in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fk_detect_uses_a_loaded_model_as_it_is_not_its_file(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "_THREAD", threading.local())
    copy = tmp_path / "copy"
    shutil.copytree(BUILTIN, copy)
    model = fk.load_model(copy)
    shutil.rmtree(copy)  # in memory only now: a reload from its folder would fail
    assert len(fk.detect(ONE, model)) == 1
    assert [m for m, _ in api._kept().values()] == [model]


def test_the_landmarker_docstring_examples_run(monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples name the shared photos as ../shared/data/...
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    tests = [t for t in finder.find(landmarker_module, globs={"fk": fk, "np": np})
             if t.examples]
    for test in tests:
        runner.run(test, out=report.append)
    assert tests and runner.summarize(verbose=False).failed == 0, "".join(report)


def test_numpy_numbers_are_numbers(landmarker):
    """Timestamps and scores often come out of NumPy (a frame counter, a threshold array)."""
    frame = _rgb(ONE)
    tracking = fk.Landmarker(min_score=np.float32(0.5))
    first = tracking.track(frame, np.int64(33))
    assert len(first) == 1 and len(tracking.track(frame, np.float32(66.0))) == 1
    with pytest.raises(ValueError, match=r"a video's frames are pixels, not files"):
        tracking.track(str(ONE), 100)


def test_settings_given_beside_a_landmarker_are_refused_not_ignored(landmarker):
    """fk.detect(photo, landmarker, max_faces=2) used to answer with all seven faces."""
    with pytest.raises(ValueError, match=r"max_faces: a landmarker keeps its own settings"):
        fk.detect(GROUP, landmarker, max_faces=2)
    with pytest.raises(ValueError, match=r"detector, fast: a landmarker keeps its own"):
        fk.detect(GROUP, landmarker, detector="haar", fast=True)
    assert len(fk.detect(GROUP, fk.Landmarker(max_faces=2))) == 2


def test_a_model_of_the_wrong_kind_is_one_line():
    with pytest.raises(fk.api.UserError, match=r"MODEL 123: expected a path, a built-in"):
        fk.Landmarker(123)


def test_no_face_gives_empty_arrays_only_for_what_the_model_gives(landmarker, tiny_onnx):
    blank = np.full((120, 160, 3), 127, np.uint8)
    empty = landmarker.detect(blank)
    assert len(empty) == 0
    assert empty.uncertainty.shape == (0, 15) and empty.poses.shape == (0, 3)
    cnn = fk.Landmarker(tiny_onnx).detect(blank)
    assert len(cnn) == 0 and cnn.uncertainty is None and cnn.poses is None


def test_a_tracked_face_carries_the_uncertainty_and_pose_its_frame_gives():
    """Tracking frames each face from its last keypoints: its uncertainty and pose are those of
    that frame's prediction, near what detecting the same frame gives."""
    frames = _moving(_rgb(ONE), 6, 4)
    tracker, once = fk.Landmarker(smooth=False), fk.Landmarker()
    for i, frame in enumerate(frames):
        tracked, found = tracker.track(frame, 40.0 * i), once.detect(frame)
        assert tracked.uncertainty.shape == (1, 15) and tracked.poses.shape == (1, 3)
        assert np.all(tracked.uncertainty > 0)
        # the same face, framed from its keypoints rather than from the detector's box
        np.testing.assert_allclose(tracked.uncertainty, found.uncertainty, rtol=0.5)
        assert np.abs(tracked.poses - found.poses).max() < 6, (i, tracked.poses, found.poses)
