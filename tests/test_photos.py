"""Photos: reading as a person sees them, framing round trips, bad files, many faces, ONNX."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from facekeypoints import geometry
from facekeypoints.data import synthetic
from facekeypoints.inference import loading
from facekeypoints.photos import FacePipeline, detectors, framing, pipeline, reading
from facekeypoints.photos.local_job import run_detect

from .cli_helpers import run_here
from .conftest import SHARED

YOUTUBE = SHARED / "photos" / "youtube"
GROUP = SHARED / "photos" / "dlib"
PHOTO = YOUTUBE / "Lincoln_Chafee_52.jpg"


def test_crop_and_map_back_is_an_exact_round_trip():
    box = geometry.Box(40.0, 59.0, 79.0, 79.0, 1.0)
    matrix = framing.crop_transform(box, framing.Framing(1.2, 0.03, -0.05))
    points = np.random.default_rng(0).uniform(0, 95, (15, 2))
    in_crop = points @ matrix[:, :2].T + matrix[:, 2]
    assert np.allclose(geometry.apply(geometry.invert(matrix), in_crop), points, atol=1e-9)


def test_a_face_scaled_into_a_photo_crops_back_to_itself():
    images, keypoints, _ = synthetic.make_faces(1, seed=5)
    face, truth = images[0], keypoints[0].reshape(-1, 2)
    scale, left, top = 2.5, 37.0, 21.0
    big = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    photo = np.full((400, 400), 90, np.uint8)
    photo[int(top):int(top) + big.shape[0], int(left):int(left) + big.shape[1]] = big
    box = geometry.Box(left, top, 96 * scale, 96 * scale, 1.0)
    matrix = framing.crop_transform(box, framing.NAIVE)
    crop = framing.crop_face(photo, matrix)
    assert np.abs(crop * 255 - face).mean() < 6  # the same face, resampled twice
    # The face's keypoints, taken to the photo, sit where its features were drawn.
    in_photo = geometry.apply(geometry.invert(matrix), truth)
    expected = (truth + 0.5) * scale - 0.5 + [left, top]
    assert np.allclose(in_photo, expected, atol=1e-6)


def test_exif_rotated_photo_reads_upright_and_keypoints_land_on_the_face(tmp_path, tiny_onnx):
    upright = reading.read_photo(PHOTO)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # as a camera would
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    rotated = tmp_path / "rotated.jpg"
    stored.save(rotated, quality=97, exif=exif)
    again = reading.read_photo(rotated)
    assert again.shape == upright.shape
    assert np.abs(again.astype(int) - upright.astype(int)).mean() < 4
    pipeline = FacePipeline(loading.load(tiny_onnx), "haar")
    a, b = pipeline.faces_in(upright), pipeline.faces_in(again)
    assert len(a) == len(b) == 1
    assert np.abs(a[0].keypoints - b[0].keypoints).max() < 4


def _odd_files(folder):
    rgb = reading.read_photo(PHOTO)
    Image.fromarray(rgb).save(folder / "good.jpg")
    Image.fromarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)).save(folder / "grey.png")
    Image.fromarray(rgb).convert("RGBA").save(folder / "rgba.png")
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    grey16 = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    cv2.imwrite(str(folder / "deep16.png"), grey16)
    (folder / "truncated.jpg").write_bytes((folder / "good.jpg").read_bytes()[:600])
    (folder / "notes.jpg").write_text("not a picture")
    big = cv2.resize(rgb, None, fx=25, fy=25, interpolation=cv2.INTER_LINEAR)  # ~4000x5000
    Image.fromarray(big).save(folder / "huge.jpg", quality=80)


def test_a_batch_with_bad_and_odd_files_reports_each_and_processes_the_rest(tmp_path, tiny_onnx):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _odd_files(inputs)
    pipeline = FacePipeline(loading.load(tiny_onnx), "haar")
    lines = []
    summary = run_detect([str(inputs)], pipeline, tmp_path / "out", log=lines.append)
    records = {r["file"].split("/")[-1]: r for r in json.loads(
        (tmp_path / "out" / "keypoints.json").read_text())}
    assert summary["files"] == 8 and summary["unreadable"] == 2
    assert "unreadable or truncated" in records["truncated.jpg"]["error"]
    assert "not an image" in records["notes.jpg"]["error"]
    for name in ("good.jpg", "grey.png", "rgba.png", "cmyk.jpg", "deep16.png", "huge.jpg"):
        assert len(records[name]["faces"]) == 1, name
        assert (tmp_path / "out" / "annotated" / "in" / name.replace(".png", ".jpg")).is_file()
    huge = records["huge.jpg"]["faces"][0]
    good = records["good.jpg"]["faces"][0]
    assert huge["box"]["width"] == pytest.approx(25 * good["box"]["width"], rel=0.25)
    rows = (tmp_path / "out" / "keypoints.csv").read_text().splitlines()
    assert rows[0].startswith("file,frame,time,face,box_left") and len(rows) == 1 + 6


def test_empty_folder_is_a_clear_error_and_a_photo_without_a_face_is_normal(tmp_path, tiny_onnx):
    (tmp_path / "empty").mkdir()
    cli = ["detect", "--model", tiny_onnx]
    empty = run_here(*cli, tmp_path / "empty", "--out", tmp_path / "o1")
    assert empty.returncode == 2 and "holds no photos" in empty.stderr
    assert "Traceback" not in empty.stderr
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(blank)
    done = run_here(*cli, blank, "--out", tmp_path / "o2")
    assert done.returncode == 0 and "no face found" in done.stderr


@pytest.mark.parametrize("detector", ["blazeface", "hog", "haar"])
def test_group_photo_gives_every_face_its_own_keypoints(tiny_onnx, detector):
    pipeline = FacePipeline(loading.load(tiny_onnx), detector, refine=0)
    faces = pipeline.faces_in(reading.read_photo(GROUP / "2008_002079.jpg"))
    assert len(faces) >= (3 if detector == "haar" else 6)
    for face in faces:  # each face's points lie in its own crop, mapped back to the photo
        matrix = framing.first_transform(face.box, pipeline.framing)
        in_crop = face.keypoints @ matrix[:, :2].T + matrix[:, 2]
        assert (in_crop >= -1e-6).all() and (in_crop <= 96 + 1e-6).all()
        others = [f for f in faces if f is not face]
        assert all(np.abs(f.keypoints - face.keypoints).max() > 5 for f in others)


def test_onnx_matches_keras_and_detect_on_onnx_never_imports_tensorflow(tiny_run, tiny_onnx,
                                                                        shared_faces):
    from facekeypoints.data import load_test

    _, X = load_test(shared_faces / "test.csv.gz")
    keras_model, onnx_model = loading.load(tiny_run.path), loading.load(tiny_onnx)
    assert onnx_model.columns == keras_model.columns and onnx_model.tta
    assert np.abs(keras_model.predict_scaled(X[:64]) - onnx_model.predict_scaled(X[:64])).max() \
        < 1e-4
    code = ("import sys; from facekeypoints.cli import main; sys.argv = ['facekeypoints', "
            f"'detect', '{PHOTO}', '--model', '{tiny_onnx}', '--no-draw', '--out', "
            f"'{tiny_run.path / 'det'}'];\ntry:\n main()\nexcept SystemExit: pass\n"
            "print('TF' if 'tensorflow' in sys.modules else 'no TF')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.stdout.strip().endswith("no TF"), out.stderr


def test_video_gives_per_frame_rows_and_an_annotated_video(tmp_path, tiny_onnx):
    rgb = reading.read_photo(PHOTO)
    h, w = rgb.shape[:2]
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    for shift in range(6):
        writer.write(cv2.cvtColor(np.roll(rgb, shift * 2, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    pipeline = FacePipeline(loading.load(tiny_onnx), "haar")
    run_detect([str(video)], pipeline, tmp_path / "out", log=lambda s: None)
    rows = (tmp_path / "out" / "keypoints.csv").read_text().splitlines()
    frames = {line.split(",")[1] for line in rows[1:]}
    assert frames == {str(i) for i in range(6)}
    assert {line.split(",")[2] for line in rows[1:]} == {f"{i / 10:.3f}" for i in range(6)}
    record = json.loads((tmp_path / "out" / "keypoints.json").read_text())[0]
    assert record["frames"] == 6 and record["faces"] == len(rows) - 1
    capture = cv2.VideoCapture(str(tmp_path / "out" / "annotated" / "clip.webm"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 6


def test_re_framing_that_drifts_out_of_the_box_is_rejected():
    box = geometry.Box(100.0, 100.0, 80.0, 80.0, 1.0)
    from facekeypoints.keypoints import MEAN_SHAPE

    on_face = MEAN_SHAPE * (80 / 96) + [100, 100]
    assert pipeline._plausible(on_face, box, framing.align_transform(on_face))
    drifted = on_face + [120, 0]
    assert not pipeline._plausible(drifted, box, framing.align_transform(drifted))
    shrunk = (on_face - on_face.mean(0)) * 0.3 + on_face.mean(0)
    assert not pipeline._plausible(shrunk, box, framing.align_transform(shrunk))


@pytest.mark.parametrize("unreadable", ["none", "some", "all"])
def test_detect_exit_code_says_whether_every_input_was_read(tmp_path, tiny_onnx, synthetic_files,
                                                            unreadable):
    """0: all read; 3 (documented in the README): some or all could not be read, the rest are
    written as usual, and each unreadable input is named."""
    good = tmp_path / "good.jpg"
    Image.fromarray(reading.read_photo(PHOTO)).save(good)
    csv_as_photo = tmp_path / "faces.jpg"
    csv_as_photo.write_bytes(synthetic_files["test.csv"].read_bytes()[:5000])
    inputs = {"none": [good], "some": [good, csv_as_photo, tmp_path / "gone.jpg"],
              "all": [csv_as_photo]}[unreadable]
    out = tmp_path / "out"
    done = run_here("detect", "--model", tiny_onnx, "--detector", "haar", *inputs, "--out", out)
    assert "Traceback" not in done.stderr
    records = json.loads((out / "keypoints.json").read_text())
    if unreadable == "none":
        assert done.returncode == 0, done.stderr
        assert len(records) == 1 and "error" not in records[0]
        return
    assert done.returncode == 3, done.stderr
    assert "faces.jpg: not an image file" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    failed = {"some": "2 of 3", "all": "1 of 1"}[unreadable]
    assert last.startswith("facekeypoints: error: ") and f"{failed} input(s) could not be read" \
        in last
    if unreadable == "some":
        assert "gone.jpg: no such file" in done.stderr
        assert [len(r["faces"]) for r in records if "error" not in r] == [1]
        assert (out / "annotated" / "good.jpg").is_file()
    assert any("error" in r for r in records)


def test_a_face_hog_misses_is_found_by_the_cascade_and_framed_alike():
    """Fallback: where HOG finds no face, OpenCV's cascade looks; its box is re-expressed as the
    HOG box that crops the face exactly as the cascade's own framing would."""
    grey = cv2.cvtColor(reading.read_photo(YOUTUBE / "Marisa_Tomei_22.jpg"), cv2.COLOR_RGB2GRAY)
    alone = detectors.HogDetector(fallback=False)
    assert alone(grey) == []  # one of the 20 youtube faces HOG misses
    haar_boxes = detectors.HaarDetector()(grey)
    (box,) = detectors.HogDetector()(grey)
    expected = framing.crop_transform(haar_boxes[0], framing.FRAMING["haar"])
    assert np.allclose(framing.crop_transform(box, framing.FRAMING["hog"]), expected)


def test_a_face_cut_by_the_edges_of_a_small_photo_is_found_once_the_photo_gets_a_margin():
    """The last youtube face that neither HOG nor the cascade found: a 95x102 photo whose edges
    cut the face. The cascade finds it on the photo given a margin, and its box comes back in
    the photo's own pixels, round the true keypoints. The margin belongs to whole photos: a
    detector run on a window cut from a frame (the tracker's check) does not add one."""
    from facekeypoints.photos.scores import load_truth, match

    name = "Chris_Cooper_42.jpg"
    grey = cv2.cvtColor(reading.read_photo(YOUTUBE / name), cv2.COLOR_RGB2GRAY)
    assert detectors.HogDetector(fallback=False)(grey) == []
    assert detectors.HaarDetector()(grey) == []
    assert detectors.HogDetector()(grey) == []  # the margin is the photo's, not the detector's
    boxes = detectors.find_faces(detectors.HogDetector(), grey)
    truth = [t for t in load_truth(YOUTUBE / "keypoints15.csv") if t.file == name]
    assert len(boxes) == 1 and match(truth, boxes) == [0]


def test_an_icon_that_hides_a_huge_picture_is_refused_before_it_is_decoded():
    """An ICO entry says 16x16 and holds a PNG of any size, which Pillow decodes as it opens
    the file: such formats are not read at all (a server's memory budget could not see it)."""
    import io
    import struct

    big = io.BytesIO()
    Image.new("RGB", (3000, 3000), (10, 200, 10)).save(big, "PNG")
    png = big.getvalue()
    ico = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32,
                                                     len(png), 22) + png
    with pytest.raises(reading.PhotoError, match="bomb.ico: not an image file"):
        reading.decode_photo(io.BytesIO(ico), "bomb.ico")
    for kind in ("TIFF", "WEBP", "BMP", "GIF", "PPM", "PNG", "JPEG", "MPO"):
        small = io.BytesIO()
        Image.new("RGB", (20, 10)).save(small, kind)
        small.seek(0)
        assert reading.decode_photo(small, kind).shape == (10, 20, 3), kind
