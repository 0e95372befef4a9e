"""Your own labelled photos: COCO keypoints files and .pts folders of whole photos in (every face
framed by the detector, as `detect` frames it), COCO out (`detect --format coco`, checked with
pycocotools), and the round trip detect -> COCO -> train -> detect. Uses ../shared/data."""

from __future__ import annotations

import json
import re
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

import facekeypoints as fk
from facekeypoints import geometry, schemes
from facekeypoints.data.labelled import person_of_photo
from facekeypoints.data.pts import write_pts
from facekeypoints.inference import loading
from facekeypoints.photos import FacePipeline, read_photo
from facekeypoints.photos.detectors import find_faces
from facekeypoints.photos.framing import crop_face, first_transform

from .cli_helpers import one_line_error, run_here
from .conftest import SHARED

YOUTUBE = SHARED / "photos" / "youtube"
TRUTH = pd.read_csv(YOUTUBE / "landmarks68.csv") if (YOUTUBE / "landmarks68.csv").is_file() \
    else None
IBUG = [f"p{i}" for i in range(68)]


def youtube_rows(people: int, first: int = 0) -> pd.DataFrame:
    """The youtube photos' rows of `people` people (by name order, from `first`)."""
    persons = TRUTH["file"].map(person_of_photo)
    chosen = sorted(persons.unique())[first:first + people]
    return TRUTH[persons.isin(chosen)].reset_index(drop=True)


def write_coco(path, rows: pd.DataFrame, names=IBUG, points_of=None, person=True,
               visibility=None) -> None:
    """A COCO keypoints file written here by hand (not by the package's writer): photos named
    relative to the file where it sits beside them, else absolute; x, y from the first pixel's
    corner (COCO's), visibility 2."""
    images, notes = [], []
    for i, row in rows.iterrows():
        photo = YOUTUBE / row["file"]
        height, width = cv2.imread(str(photo)).shape[:2]
        image = {"id": i + 1, "file_name": str(photo), "width": width, "height": height}
        if person:
            image["person"] = person_of_photo(row["file"])
        images.append(image)
        points = row[[f"p{k}_{a}" for k in range(68) for a in "xy"]].to_numpy(float)
        points = points.reshape(68, 2) if points_of is None else points_of(points.reshape(68, 2))
        seen = np.full(len(points), 2) if visibility is None else visibility(i, len(points))
        triples = np.column_stack([points + 0.5, seen]).reshape(-1)
        notes.append({"id": i + 1, "image_id": i + 1, "category_id": 7,
                      "keypoints": triples.tolist(), "num_keypoints": int((seen > 0).sum()),
                      "iscrowd": 0})
    path.write_text(json.dumps({"images": images, "annotations": notes, "categories": [
        {"id": 7, "name": "face", "keypoints": list(names), "skeleton": [[1, 2]]}]}))


@pytest.fixture(scope="module")
def coco68(tmp_path_factory):
    """12 people's youtube photos with their 68 points, as a COCO file naming who is who."""
    path = tmp_path_factory.mktemp("coco") / "faces.json"
    write_coco(path, youtube_rows(12))
    return path


def test_a_face_is_framed_from_its_labels_exactly_as_detect_frames_it(coco68):
    """The crop training sees is detect's first crop of the same find (BlazeFace's eyes and
    mouth on the template, no re-framing pass after it), not a crop placed by the labels."""
    faces = fk.load(coco68, dropna=False)[0]
    rows = youtube_rows(12)
    pipeline = FacePipeline(loading.load("builtin68"), "blazeface")
    boxes = find_faces(pipeline.detector, read_photo(YOUTUBE / rows["file"][0]))
    assert pipeline.passes_after(boxes) == 0  # detect's crop of a BlazeFace find is its first
    for i in [0, 5, 40]:
        rgb = read_photo(YOUTUBE / rows["file"][i])
        box = find_faces(pipeline.detector, rgb)[0]
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        detects = crop_face(grey, first_transform(box, pipeline.framing))
        np.testing.assert_array_equal(faces[i, ..., 0], detects)
        # the labels' own framing (their points on the mean shape: what .pts folders had) is
        # another crop altogether
        points = rows.iloc[i, 1:].to_numpy(float).reshape(68, 2)
        own = geometry.fit_similarity(points, schemes.builtin("ibug68").mean_shape)
        assert np.abs(crop_face(grey, own) - detects).mean() > 0.02


def test_a_csv_of_photo_paths_reads_as_the_coco_file_of_the_same_faces_does(coco68, tmp_path):
    rows = youtube_rows(12)
    table = rows.copy().assign(file=[str(YOUTUBE / f) for f in rows["file"]],
                        person=rows["file"].map(person_of_photo))
    table.to_csv(tmp_path / "photos.csv", index=False)
    from_csv, from_coco = (fk.load_frame(p) for p in (tmp_path / "photos.csv", coco68))
    columns = schemes.builtin("ibug68").columns
    np.testing.assert_allclose(from_csv[columns], from_coco[columns], atol=1e-4)
    np.testing.assert_allclose(np.stack(from_csv["Image"]), np.stack(from_coco["Image"]))
    assert (from_csv["person"] == from_coco["person"]).all()
    assert from_csv["person"].nunique() == 12


def test_a_coco_file_of_photos_trains_mesh_held_out_by_person_and_detects(coco68, tmp_path):
    run_ = fk.train("mesh", coco68, tmp_path / "mesh", progress=False, log=None)
    record = json.loads((run_.path / "data.json").read_text())
    people = set(youtube_rows(12)["file"].map(person_of_photo))
    assert record["split"] == "person" and set(record["validation_persons"]) < people
    framing = record["framing"]
    assert framing["framed_by"] == "blazeface" and framing["faces"] == len(youtube_rows(12))
    assert framing["framed_from_labels"] == 0
    assert json.loads((run_.path / "scheme.json").read_text()) == {"name": "ibug68"}
    held_out = fk.evaluate(run_)  # the held-out people's detector-framed faces, read again
    assert 0 < held_out.rmse < 6, held_out.rmse
    # on a photo of someone it never saw, near the truth (NME well under a poor fit's 20%)
    other = youtube_rows(1, first=30).iloc[0]
    face = fk.detect(YOUTUBE / other["file"], run_)[0]
    truth = other.iloc[1:].to_numpy(float).reshape(68, 2)
    eyes = schemes.builtin("ibug68").eye_centres(truth)
    nme = np.linalg.norm(face.keypoints - truth, axis=1).mean() / np.linalg.norm(
        eyes[0] - eyes[1])
    assert face.names == tuple(IBUG) and nme < 0.12, nme


def test_a_pts_folder_of_photos_trains_mesh_and_fast_split_by_photo(tmp_path):
    rows = youtube_rows(6)
    folder = tmp_path / "pts"
    folder.mkdir()
    for _, row in rows.iterrows():
        shutil.copy(YOUTUBE / row["file"], folder / row["file"])
        write_pts(folder / f"{row['file'].rsplit('.', 1)[0]}.pts",
                  row.iloc[1:].to_numpy(float).reshape(68, 2))
    mesh = fk.train("mesh", folder, tmp_path / "mesh", progress=False, log=None)
    record = json.loads((mesh.path / "data.json").read_text())
    # no one named: held out by photo, each photo a group of its own
    assert all(p.startswith("photo:") for p in record["validation_persons"])
    assert record["split"] == "photo"  # not "person": one person's photos fall on both sides
    assert record["framing"]["faces"] == len(rows) and mesh.status == "finished"
    fast = fk.train("fast", folder, tmp_path / "fast", epochs=2, progress=False, log=None)
    assert len(fast.history) == 2 and np.isfinite(fast.history["val_loss"]).all()


def test_unlabelled_points_are_masked_and_a_face_the_detector_misses_is_counted(tmp_path):
    """Visibility 0 is no label (NaN, masked in the loss); a face on a blank photo, which no
    detector finds, is framed from its labels' box and named in the run's data record."""
    rows = youtube_rows(4)
    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    path = tmp_path / "faces.json"
    write_coco(path, rows, visibility=lambda i, n: np.where(np.arange(n) < 17, 0, 2) if i == 0
               else np.full(n, 2))
    document = json.loads(path.read_text())
    document["images"][1]["file_name"] = "blank.jpg"  # relative to the file
    path.write_text(json.dumps(document))
    X, y = fk.load(path, dropna=False)
    assert np.isnan(y[0, :34]).all() and not np.isnan(y[0, 34:]).any()
    assert not np.isnan(y[1:]).any()
    lines: list[str] = []
    run_ = fk.train("fast", path, tmp_path / "run", epochs=2, validation=0, progress=False,
                    log=lines.append)
    assert any("the detector missed 1 labelled face(s)" in line and "blank.jpg (row 2)" in line
               for line in lines), lines
    framing = json.loads((run_.path / "data.json").read_text())["framing"]
    assert framing["framed_from_labels"] == 1 and framing["missed_by_detector"] == [
        "blank.jpg (row 2)"]
    assert np.isfinite(run_.history["train_loss"]).all()


def test_a_coco_file_with_its_own_names_is_a_scheme_of_the_users(tmp_path):
    """Five points of the user's own: left/right pairs from the names, the skeleton as the
    scheme's lines, eyes from left_eye and right_eye; a model trained on them detects them."""
    names = ["left_eye", "right_eye", "nose", "left mouth", "right-mouth"]

    def five(p: np.ndarray) -> np.ndarray:
        return np.stack([p[42:48].mean(0), p[36:42].mean(0), p[30], p[54], p[48]])

    path = tmp_path / "five.json"
    write_coco(path, youtube_rows(8), names=names, points_of=five)
    assert fk.load(path)[1].shape[1] == 10
    run_ = fk.train("mesh", path, tmp_path / "run", progress=False, log=None)
    scheme = json.loads((run_.path / "scheme.json").read_text())
    assert scheme["points"] == ["left_eye", "right_eye", "nose", "left_mouth", "right_mouth"]
    assert sorted(map(sorted, scheme["mirror"])) == [["left_eye", "right_eye"],
                                                     ["left_mouth", "right_mouth"]]
    assert scheme["lines"] == [["left_eye", "right_eye"]]
    assert scheme["eyes"] == [["left_eye"], ["right_eye"]]
    face = fk.detect(YOUTUBE / youtube_rows(1, first=30)["file"][0], run_)[0]
    assert face.names == tuple(scheme["points"])
    assert face.keypoints[0, 0] > face.keypoints[1, 0]  # the subject's left eye: image right


def test_detect_format_coco_loads_in_pycocotools_scores_against_truth_and_round_trips(
        tmp_path):
    """detect -> COCO (one annotation per face, the scheme's names; COCOeval against the true
    points) -> train -> detect: a model fitted on the pre-labels gives them back."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rows = youtube_rows(10)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in rows["file"]:
        shutil.copy(YOUTUBE / name, photos / name)
    done = run_here("detect", photos, "--model", "builtin68", "--format", "coco", "--out",
               tmp_path / "out", "--no-draw", "--progress", "off")
    assert done.returncode == 0, done.stderr[-2000:]
    made = tmp_path / "out" / "keypoints.coco.json"
    coco = COCO(str(made))
    records = json.loads((tmp_path / "out" / "keypoints.json").read_text())
    assert len(coco.getAnnIds()) == sum(len(r["faces"]) for r in records) == len(rows)
    assert coco.loadCats(coco.getCatIds())[0]["keypoints"] == IBUG
    assert all((made.parent / i["file_name"]).resolve().is_file()
               for i in coco.loadImgs(coco.getImgIds()))
    # the truth in COCO, each face's box its points' and area its box's
    truth_path = tmp_path / "truth.json"
    found = json.loads(made.read_text())
    truth = {"images": found["images"], "categories": found["categories"], "annotations": []}
    ids = {i["file_name"].rsplit("/", 1)[-1]: i["id"] for i in found["images"]}
    for k, row in rows.iterrows():
        points = row.iloc[1:].to_numpy(float).reshape(68, 2) + 0.5
        (x0, y0), (x1, y1) = points.min(0), points.max(0)
        truth["annotations"].append({
            "id": k + 1, "image_id": ids[row["file"]], "category_id": 1, "iscrowd": 0,
            "keypoints": np.column_stack([points, np.full(68, 2)]).reshape(-1).tolist(),
            "num_keypoints": 68, "bbox": [x0, y0, x1 - x0, y1 - y0],
            "area": float((x1 - x0) * (y1 - y0))})
    truth_path.write_text(json.dumps(truth))
    gt = COCO(str(truth_path))
    dt = gt.loadRes(found["annotations"])
    evaluation = COCOeval(gt, dt, "keypoints")
    evaluation.params.kpt_oks_sigmas = np.full(68, 0.035)  # about a face's own point spread
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] > 0.5  # AP over OKS 0.50:0.95: the pre-labels fit the truth
    # and a box or point moved by a face's width would not: AP falls with them
    moved = [{**a, "keypoints": [v + 40 * (j % 3 == 0) for j, v in enumerate(a["keypoints"])]}
             for a in found["annotations"]]
    worse = COCOeval(gt, gt.loadRes(moved), "keypoints")
    worse.params.kpt_oks_sigmas = np.full(68, 0.035)
    worse.evaluate()
    worse.accumulate()
    worse.summarize()
    assert worse.stats[0] < 0.1
    # round trip: a mesh fitted on the pre-labels gives back builtin68's points
    back = fk.train("mesh", made, tmp_path / "back", progress=False, log=None)
    for name in rows["file"][:3]:
        ours = fk.detect(photos / name, back)[0].keypoints
        theirs = fk.detect(photos / name, "builtin68")[0].keypoints
        truth68 = rows[rows["file"] == name].iloc[0, 1:].to_numpy(float).reshape(68, 2)
        eyes = schemes.builtin("ibug68").eye_centres(truth68)
        gap = np.linalg.norm(ours - theirs, axis=1).mean() / np.linalg.norm(eyes[0] - eyes[1])
        assert gap < 0.06, (name, gap)


def test_evaluate_photos_reads_a_coco_truth_as_it_reads_the_csv(coco68, tmp_path):
    rows = youtube_rows(12)
    csv_truth = tmp_path / "truth.csv"
    rows.to_csv(csv_truth, index=False)
    scores = [run_here("evaluate-photos", YOUTUBE, "--truth", truth, "--model", "builtin68",
                  "--fast") for truth in (csv_truth, coco68)]
    assert [s.returncode for s in scores] == [0, 0], scores[1].stderr[-2000:]
    tables = [s.stdout.splitlines() for s in scores]
    assert tables[0][0].startswith(f"faces {len(rows)}, detected {len(rows)}")
    overall = [float(t[-1].split()[-1]) for t in tables]
    assert overall[0] == overall[1] and 1 < overall[0] < 20


def test_evaluate_photos_scores_the_folder_it_is_given_or_says_why_not(coco68, tmp_path):
    """A COCO truth names its photos itself: they must be in FOLDER (another folder is no
    silent score of the truth's own photos); photos none of which can be read are no table
    of NaN."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    one_line_error(run_here("evaluate-photos", elsewhere, "--truth", coco68, "--model",
                            "builtin68"),
                   "faces.json", f"not in {elsewhere}", "give the folder that holds them")
    one_line_error(run_here("evaluate-photos", tmp_path / "nowhere", "--truth", coco68),
                   "nowhere: no such folder")
    csv_truth = tmp_path / "truth.csv"
    youtube_rows(2).to_csv(csv_truth, index=False)
    one_line_error(run_here("evaluate-photos", elsewhere, "--truth", csv_truth, "--model",
                       "builtin68"), "elsewhere: none of the", "could be read there")


def test_a_broken_coco_file_is_one_line_naming_it(tmp_path, coco68):
    document = json.loads(coco68.read_text())
    document["annotations"][3]["keypoints"] = document["annotations"][3]["keypoints"][:-3]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    one_line_error(run_here("train", "--recipe", "mesh", "--data", broken, "--out", tmp_path / "r"),
                   "broken.json", "row 4", "68 x, y, visibility triples")
    missing = tmp_path / "missing.json"
    document = json.loads(coco68.read_text())
    document["images"][0]["file_name"] = "nowhere.jpg"
    missing.write_text(json.dumps(document))
    one_line_error(run_here("evaluate-photos", YOUTUBE, "--truth", missing, "--model", "builtin68"),
                   "missing.json", "no image 'nowhere.jpg'")
    one_line_error(run_here("detect", YOUTUBE / TRUTH["file"][0], "--format", "xml"), "--format")



@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.update(images=5), "images: expected a list, found int"),
    (lambda d: d.update(annotations=5), "annotations: expected a list, found int"),
    (lambda d: d.update(categories=5), "categories: expected a list, found int"),
    (lambda d: d["images"][0].update(id=[1]), "images: expected entries with an id"),
    (lambda d: d["annotations"][0].update(image_id=[1]), "row 1: annotation 1: image_id"),
    (lambda d: d["categories"][0].update(id="7"), "no annotation has category_id '7'"),
    (lambda d: d["categories"][0].update(skeleton=[[0, 1]]), "skeleton expected pairs of 1-based"),
    (lambda d: d["annotations"][1]["keypoints"].__setitem__(2, 0.5),
     "row 2: annotation 2: visibility expected 0"),
    (lambda d: d["annotations"][1]["keypoints"].__setitem__(0, "12"),
     "row 2: annotation 2: keypoints expected 68 x, y, visibility triples of numbers"),
])
def test_a_coco_file_of_the_wrong_shape_is_one_error_naming_what(tmp_path, coco68, change,
                                                                 expected):
    from facekeypoints.data.coco import read_coco
    from facekeypoints.errors import DataError

    document = json.loads(coco68.read_text())
    document["categories"][0]["keypoints"] = [f"k{i}" for i in range(68)]  # a user's scheme
    change(document)
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(document))
    with pytest.raises(DataError, match=re.escape(expected)) as error:
        read_coco(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_a_missed_face_whose_labels_make_no_box_is_one_error(tmp_path):
    """On a blank photo the detector finds nothing; one labelled point frames no face."""
    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    path = tmp_path / "faces.json"
    write_coco(path, youtube_rows(2), visibility=lambda i, n: np.where(np.arange(n) < 1, 2, 0)
               if i == 1 else np.full(n, 2))
    document = json.loads(path.read_text())
    document["images"][1]["file_name"] = "blank.jpg"
    path.write_text(json.dumps(document))
    from facekeypoints.errors import UserError

    with pytest.raises(UserError, match=r"blank\.jpg: the face of the data's row 2: "
                                                r"the detector misses it.*\(0 x 0 px\)"):
        fk.load(path, dropna=False)
