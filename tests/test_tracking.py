"""Video: the upright (similarity) framing, the tracker that follows faces and finds them again
when they come back, and One Euro smoothing. Real photos from ../shared/data."""

import cv2
import numpy as np
import pytest

from facekeypoints import geometry
from facekeypoints.inference import loading
from facekeypoints.keypoints import MEAN_SHAPE
from facekeypoints.photos import FacePipeline, framing, reading
from facekeypoints.photos.scores import load_truth
from facekeypoints.photos.tracking import FaceTracker, OneEuroFilter, shape_error

from .conftest import SHARED

YOUTUBE = SHARED / "photos" / "youtube"
NAME = "Lincoln_Chafee_52.jpg"


def _truth(name: str = NAME) -> np.ndarray:
    return next(t.points for t in load_truth(YOUTUBE / "keypoints15.csv") if t.file == name)


def _rotate(rgb: np.ndarray, points: np.ndarray, degrees: float):
    h, w = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D(tuple(points.mean(axis=0)), degrees, 1.0)
    turned = cv2.warpAffine(rgb, matrix, (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return turned, points @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize("degrees", [-30, 20])
def test_a_rolled_face_is_cropped_upright_and_its_keypoints_map_back(degrees):
    rgb, truth = reading.read_photo(YOUTUBE / NAME), _truth()
    turned, turned_truth = _rotate(rgb, truth, degrees)
    upright = framing.align_transform(turned_truth, upright=True)
    plain = framing.align_transform(turned_truth)
    in_crop = turned_truth @ upright[:, :2].T + upright[:, 2]
    eyes = in_crop[0] - in_crop[1]  # the eye line is level in the upright crop ...
    assert abs(np.degrees(np.arctan2(eyes[1], eyes[0]))) < 5
    plain_eyes = (turned_truth @ plain[:, :2].T + plain[:, 2])[[0, 1]]
    tilt = np.degrees(np.arctan2(*(plain_eyes[0] - plain_eyes[1])[::-1]))
    assert abs(tilt) > abs(degrees) - 8  # ... and stays tilted without the rotation
    # the upright crop of the turned photo is the upright crop of the original photo
    grey, turned_grey = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (rgb, turned))
    original = framing.crop_face(grey, framing.align_transform(truth, upright=True))
    again = framing.crop_face(turned_grey, upright)
    assert np.abs(original - again)[16:80, 16:80].mean() < 0.03
    # crop coordinates go back to the turned photo exactly
    assert np.abs(geometry.apply(geometry.invert(upright), in_crop) - turned_truth).max() < 1e-9
    assert shape_error(in_crop) < 4 and shape_error(np.random.default_rng(0)
                                                    .uniform(0, 96, (15, 2))) > 10


def test_the_pipeline_crops_a_rolled_face_upright_on_its_own_keypoints(photo_onnx):
    """Re-framing fits a similarity to the predicted keypoints: the crop turns with the face."""
    rgb, truth = reading.read_photo(YOUTUBE / NAME), _truth()
    turned, turned_truth = _rotate(rgb, truth, 25)
    pipeline = FacePipeline(loading.load(photo_onnx), "hog", refine=1)
    grey = cv2.cvtColor(turned, cv2.COLOR_RGB2GRAY)
    # keypoints that sit where the turned face is: the crop follows them, rotation included
    matrix = framing.align_transform(turned_truth, upright=pipeline.upright)
    angle = np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))
    assert abs(angle - 25) < 6  # turning the photo back by the face's roll
    (points,), *_ = pipeline.predict_at(grey, [matrix])
    crop = framing.crop_face(grey, matrix) * 255
    assert points.shape == (15, 2) and crop.std() > 10  # a real face, not a blank border


def _moving_video(rgb: np.ndarray, frames: int, step: float, leave: range = range(0)):
    """The photo's face moving `step` px a frame on a larger canvas, off screen in `leave`."""
    h, w = rgb.shape[:2]
    canvas_w, canvas_h = w + int(abs(step) * frames) + 40, h + 40
    out = []
    for i in range(frames):
        frame = np.full((canvas_h, canvas_w, 3), 90, np.uint8)
        if i not in leave:
            x = 20 + int(round(i * step))
            frame[20:20 + h, x:x + w] = rgb
        out.append((frame, 20 + i * step))
    return out


def test_the_tracker_follows_a_face_and_finds_it_again_when_it_comes_back(photo_onnx):
    rgb = reading.read_photo(YOUTUBE / NAME)
    pipeline = FacePipeline(loading.load(photo_onnx), "hog")
    tracker = FaceTracker(pipeline, smooth=False, redetect_every=0, verify_every=5)
    counts = []
    for i, (frame, _) in enumerate(_moving_video(rgb, 30, 2.0, leave=range(10, 20))):
        counts.append(len(tracker(frame, i / 25)))
    assert counts[:10] == [1] * 10  # found, then followed
    assert counts[10:20] == [0] * 10  # gone from the frame: lost at once, not invented
    assert counts[20:] == [1] * 10  # back: the detector finds it again
    # the whole-frame detector ran on the first frame and while no face was followed, no more
    assert tracker.detections == 1 + 10 + 1


def test_the_builtin_model_follows_a_face_with_blazeface_in_one_pass_a_frame(photo_onnx):
    """The mesh follows a face in one crop a frame (a CNN in two, `--fast` in one), BlazeFace
    finds it once, and every frame's keypoints stay on the moving face."""
    rgb = reading.read_photo(YOUTUBE / NAME)
    truth = _truth()
    eyes = np.linalg.norm(truth[0] - truth[1])
    tracker = FaceTracker(FacePipeline(loading.load(None)), smooth=False, redetect_every=0)
    assert tracker.passes == 1
    assert FaceTracker(FacePipeline(loading.load(photo_onnx), "hog")).passes == 2
    assert FaceTracker(FacePipeline(loading.load(photo_onnx), "hog", fast=True)).passes == 1
    for i, (frame, x) in enumerate(_moving_video(rgb, 20, 3.0)):
        (face,) = tracker(frame, i / 25)
        moved = truth + [round(x), 20]
        assert np.linalg.norm(face.keypoints - moved, axis=1).mean() < 0.12 * eyes, i
    assert tracker.detections == 1


def test_following_costs_less_than_detecting_every_frame(photo_onnx):
    rgb = reading.read_photo(YOUTUBE / NAME)
    frames = _moving_video(rgb, 12, 1.0)
    pipeline = FacePipeline(loading.load(photo_onnx), "hog")
    tracker = FaceTracker(pipeline, smooth=False, redetect_every=0, verify_every=0)
    tracked = [tracker(f, i / 25) for i, (f, _) in enumerate(frames)]
    assert tracker.detections == 1 and all(len(faces) == 1 for faces in tracked)
    detected = [pipeline.faces_in(f) for f, _ in frames]
    for a, b in zip(tracked, detected, strict=True):  # the same face, where it is
        assert np.linalg.norm(a[0].keypoints.mean(0) - b[0].keypoints.mean(0)) < 8


def test_one_euro_steadies_a_still_point_and_follows_a_moving_one():
    rng = np.random.default_rng(0)
    still = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    raw = 50 + rng.normal(0, 1.0, (300, 15, 2))
    smooth = np.array([still(x, i / 30) for i, x in enumerate(raw)])
    jitter_raw = np.abs(np.diff(raw, axis=0)).mean()
    jitter_smooth = np.abs(np.diff(smooth[30:], axis=0)).mean()
    assert jitter_smooth < jitter_raw / 4
    moving = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    path = np.array([[i * 3.0, 0.0] for i in range(120)])  # 90 px a second
    followed = np.array([moving(p, i / 30) for i, p in enumerate(path)])
    lag = np.abs(followed[60:, 0] - path[60:, 0]).max()
    assert lag < 6  # px behind a point moving 3 px a frame
    assert moving(np.array([0.0, 0.0]), 0.0).tolist() == [0.0, 0.0]  # time going back: reset


def test_smoothing_steadies_the_keypoints_of_a_still_face_in_noisy_frames(photo_onnx):
    rgb = reading.read_photo(YOUTUBE / NAME).astype(np.float32)
    rng = np.random.default_rng(1)
    frames = [np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
              for _ in range(40)]
    pipeline = FacePipeline(loading.load(photo_onnx), "hog")
    jitter = {}
    for smooth in (False, True):
        tracker = FaceTracker(pipeline, smooth=smooth, redetect_every=0)
        points = np.array([tracker(f, i / 30)[0].keypoints for i, f in enumerate(frames)])
        jitter[smooth] = np.linalg.norm(np.diff(points[10:], axis=0), axis=2).mean()
    assert jitter[True] < jitter[False] / 2, jitter


def test_mean_shape_is_a_face():
    assert shape_error(MEAN_SHAPE) < 1e-6


def test_webcam_and_input_mistakes_are_one_line_errors(tmp_path, tiny_onnx):
    from .cli_helpers import one_line_error, run_here

    # this machine has no camera: the webcam path must say so, not hang or trace back
    one_line_error(run_here("detect", "--webcam", "7", "--model", tiny_onnx, "--out",
                            tmp_path),
                   "--webcam 7", "cannot open this camera")
    one_line_error(run_here("detect", "photo.jpg", "--webcam", "0", "--model", tiny_onnx),
                   "one of the two")
    one_line_error(run_here("detect", "--model", tiny_onnx), "one of the two")


def test_smoothing_keeps_up_with_a_moving_face(photo_onnx):
    """A face gliding 2 px a frame: the smoothed keypoints follow it, a little behind."""
    rgb = reading.read_photo(YOUTUBE / NAME)
    frames = _moving_video(rgb, 30, 2.0)
    pipeline = FacePipeline(loading.load(photo_onnx), "hog")
    centres = {}
    for smooth in (False, True):
        tracker = FaceTracker(pipeline, smooth=smooth, redetect_every=0)
        centres[smooth] = np.array([tracker(f, i / 30)[0].keypoints.mean(axis=0)
                                    for i, (f, _) in enumerate(frames)])
    raw, smooth = (centres[k][-1, 0] - centres[k][5, 0] for k in (False, True))
    assert raw > 10 and smooth > 0.85 * raw, (raw, smooth)  # it moves with the face
    lag = np.abs(centres[True][10:] - centres[False][10:]).max()
    assert lag < 4, lag  # px behind the raw keypoints
