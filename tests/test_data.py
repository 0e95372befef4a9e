"""Reading Kaggle files: real formats, and one clear line for every kind of bad input."""

import gzip
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from facekeypoints import data, keypoints
from facekeypoints.errors import DataError, UserError
from facekeypoints.keypoints import COLUMNS

HEADER = ",".join([*COLUMNS, "Image"])


def _row(values=None, pixels=None):
    values = values if values is not None else ["48.0"] * 30
    pixels = pixels if pixels is not None else " ".join(["128"] * 9216)
    return ",".join([*values, pixels])


def _write(tmp_path, lines, name="training.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_real_training_file_loads_scaled_with_names_and_people(shared_faces):
    faces = data.load_training(shared_faces / "training.csv.gz")
    assert faces.X.shape == (2885, 96, 96, 1) and faces.X.dtype == np.float32
    assert faces.X.min() >= 0.0 and faces.X.max() <= 1.0
    assert faces.columns == list(COLUMNS)
    assert np.nanmin(faces.y) >= -1 and np.nanmax(faces.y) <= 1
    assert (~np.isnan(faces.y).any(axis=1)).sum() == 861  # complete rows, as the README says
    assert faces.persons is not None and faces.persons[1] == "Abdullah_Gul"


def test_scale_and_unscale_are_inverse_and_centre_at_48():
    y = np.array([[0.0, 48.0, 96.0]])
    assert np.allclose(keypoints.scale(y), [[-1, 0, 1]])
    assert np.allclose(keypoints.unscale(keypoints.scale(y)), y)


def _first_rows(synthetic_files, tmp_path, rows: int = 40) -> Path:
    """The synthetic training file's header and first rows: a format test needs no more, and
    parsing 9,216 pixels a row is the cost."""
    lines = synthetic_files["training.csv"].read_text().splitlines(keepends=True)
    path = tmp_path / "plain" / "training.csv"
    path.parent.mkdir()
    path.write_text("".join(lines[: rows + 1]))
    return path


def test_plain_gz_and_zip_read_the_same(tmp_path, synthetic_files):
    plain = _first_rows(synthetic_files, tmp_path)
    gz = tmp_path / "training.csv.gz"
    with open(plain, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    zipped = tmp_path / "training.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(plain, "training.csv")
    a, b, c = (data.load_training(p) for p in (plain, gz, zipped))
    assert len(a) == 40 and np.array_equal(a.X, b.X) and np.array_equal(a.X, c.X)
    assert np.array_equal(a.y, c.y, equal_nan=True)


def test_select_with_dropna_keeps_complete_rows_of_those_columns(synthetic_files):
    faces = data.load_training(synthetic_files["training.csv"])
    cols = ["nose_tip_x", "nose_tip_y"]
    picked = faces.select(cols, dropna=True)
    assert picked.columns == cols and not np.isnan(picked.y).any()
    assert len(picked) == int((~np.isnan(faces.y[:, 20])).sum())
    assert len(faces.select(list(COLUMNS), dropna=True)) < len(picked)


def test_split_by_person_keeps_each_person_on_one_side_and_is_seeded(shared_faces):
    faces = data.load_training(shared_faces / "training.csv.gz")
    train, val = data.split(faces, 0.2, seed=1)
    assert not set(train.persons) & set(val.persons)
    assert 0.15 < len(val) / len(faces) < 0.3
    again, _ = data.split(faces, 0.2, seed=1)
    assert np.array_equal(train.rows, again.rows)
    other, _ = data.split(faces, 0.2, seed=2)
    assert not np.array_equal(train.rows, other.rows)


@pytest.mark.parametrize(("lines", "expected"), [
    ([HEADER.replace(",nose_tip_y", ""), _row(values=["48"] * 29)],
     "missing column(s) nose_tip_y"),
    ([HEADER + ",extra", _row() + ",1"], "unexpected column(s) extra"),
    ([HEADER, _row(pixels=" ".join(["1"] * 9215))], "row 1, column Image: expected 9216 pixel"),
    ([HEADER, _row(), _row(pixels=" ".join(["1"] * 9215 + ["x7"]))],
     "row 2, column Image: non-numeric pixel value 'x7'"),
    ([HEADER, _row(pixels=" ".join(["1"] * 9215 + ["300"]))],
     "row 1, column Image: pixel value 300 is not an integer from 0 to 255"),
    ([HEADER, _row(pixels=" ".join(["-3"] + ["1"] * 9215))], "pixel value -3 is not an integer"),
    ([HEADER, _row(values=["48"] * 5 + ["97.5"] + ["48"] * 24)],
     "row 1, column left_eye_inner_corner_y: value 97.5 is outside the image"),
    ([HEADER, _row(values=["48"] * 2 + ["abc"] + ["48"] * 27)],
     "row 1, column right_eye_center_x: expected a number, found 'abc'"),
    ([HEADER], "the file has a header but no rows"),
])
def test_bad_training_files_name_file_row_and_column(tmp_path, lines, expected):
    path = _write(tmp_path, lines)
    with pytest.raises(DataError) as error:
        data.load_training(path)
    message = str(error.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_empty_file(tmp_path):
    path = tmp_path / "training.csv"
    path.write_text("")
    with pytest.raises(DataError, match="the file is empty"):
        data.load_training(path)


def test_truncated_gzip_and_broken_zip_are_reported(tmp_path, synthetic_files):
    raw = gzip.compress(_first_rows(synthetic_files, tmp_path).read_bytes())
    truncated = tmp_path / "training.csv.gz"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="unreadable or truncated"):
        data.load_training(truncated)
    broken = tmp_path / "training.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 50)
    with pytest.raises(DataError, match="unreadable or truncated"):
        data.load_training(broken)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        data.load_training(tmp_path / "nope.csv")
    with pytest.raises(UserError, match="a folder with no .pts files"):
        data.load_training(tmp_path)


def test_test_file_rejects_duplicate_image_ids(tmp_path):
    px = " ".join(["5"] * 9216)
    path = _write(tmp_path, ["ImageId,Image", f"1,{px}", f"2,{px}", f"2,{px}"], "test.csv")
    with pytest.raises(DataError, match="row 3, column ImageId: duplicate ImageId 2"):
        data.load_test(path)


def test_real_lookup_tables_load_with_crlf(shared_faces):
    ids, _ = data.load_test(shared_faces / "test.csv.gz")
    ours = data.load_lookup(shared_faces / "IdLookupTable.csv", ids)
    assert len(ours) == 7188
    kaggle = data.load_lookup(shared_faces.parent / "kaggle" / "IdLookupTable.csv")
    assert len(kaggle) == 27124 and kaggle["ImageId"].max() == 1783
    assert set(kaggle["FeatureName"]) <= set(COLUMNS)


def test_lookup_naming_an_unknown_feature_or_image(tmp_path):
    path = _write(tmp_path, ["RowId,ImageId,FeatureName,Location", "1,1,nose_tip_x,",
                             "2,1,nose_tipp_y,"], "IdLookupTable.csv")
    with pytest.raises(DataError, match="row 2, column FeatureName: unknown feature 'nose_tipp_y'"):
        data.load_lookup(path)
    path = _write(tmp_path, ["RowId,ImageId,FeatureName,Location", "1,1,nose_tip_x,",
                             "2,9,nose_tip_y,"], "IdLookupTable.csv")
    with pytest.raises(DataError, match="row 2, column ImageId: ImageId 9 is not in the test"):
        data.load_lookup(path, known_ids=np.array([1, 2]))


def test_a_strangers_training_sources_with_as_many_rows_names_no_one(tmp_path, synthetic_files):
    """A sibling folder's training_sources.csv lends its people only to a copy of its own
    faces (faces68/ of faces/), never by row count alone."""
    import shutil

    from facekeypoints.data import kaggle

    rows = synthetic_files["training.csv"].read_text().splitlines(keepends=True)
    for name, lines in (("a-stranger", [rows[0], *reversed(rows[1:])]), ("b-alone", None),
                        ("c-twin", rows)):
        (tmp_path / name).mkdir()
        shutil.copy(synthetic_files["training_sources.csv"], tmp_path / name)
        if lines is not None:
            (tmp_path / name / "training.csv").write_text("".join(lines))
    mine = tmp_path / "mine" / "training.csv"
    mine.parent.mkdir()
    mine.write_text("".join(rows))
    twin = kaggle.load_training(tmp_path / "c-twin" / "training.csv").persons
    assert twin is not None and len(set(twin)) > 1
    np.testing.assert_array_equal(kaggle.load_training(mine).persons, twin)
    shutil.rmtree(tmp_path / "c-twin")
    kaggle._TRAINING_CACHE.clear()
    assert kaggle.load_training(mine).persons is None
