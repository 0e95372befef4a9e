"""Kaggle submissions: the exact format, every lookup row in order, and scoring."""

import numpy as np
import pandas as pd
import pytest

from facekeypoints.errors import DataError
from facekeypoints.inference import submission
from facekeypoints.training import loop
from facekeypoints.training import recipe as recipe_mod


def test_writer_matches_kaggles_sample_submission_format(tmp_path, shared_faces):
    sample = shared_faces.parent / "kaggle" / "SampleSubmission.csv"
    ours = tmp_path / "submission.csv"
    table = pd.read_csv(sample)
    submission.write(table.assign(Location=table["Location"].astype(float)), ours)
    sample_bytes, ours_bytes = sample.read_bytes(), ours.read_bytes()
    assert ours_bytes.splitlines()[0] == sample_bytes.splitlines()[0] == b"RowId,Location"
    assert (b"\r\n" in ours_bytes) == (b"\r\n" in sample_bytes)
    assert ours_bytes.endswith(b"\n") == sample_bytes.endswith(b"\n")
    assert submission.read_locations(ours).equals(submission.read_locations(sample))


def test_submit_fills_every_lookup_row_and_scores(tmp_path, synthetic_files):
    recipe = recipe_mod.load("model1", {"epochs": 2})
    run = loop.train(recipe, synthetic_files["training.csv"], tmp_path / "run", log=print)
    from facekeypoints.inference import loading

    table = submission.predict_lookup(loading.load(run.path), synthetic_files["test.csv"],
                                      synthetic_files["IdLookupTable.csv"])
    lookup = pd.read_csv(synthetic_files["IdLookupTable.csv"])
    assert list(table["RowId"]) == list(lookup["RowId"])
    assert table["Location"].between(0, 96).all()
    out = tmp_path / "sub.csv"
    submission.write(table, out)
    rmse, rows = submission.score(out, synthetic_files["solution.csv"])
    assert rows == len(lookup) and 0 < rmse < 48


def test_score_of_the_solution_is_zero_and_of_a_shift_is_the_shift(tmp_path, shared_faces):
    solution = shared_faces / "solution.csv"
    assert submission.score(solution, solution) == (0.0, 7188)
    shifted = tmp_path / "shifted.csv"
    table = pd.read_csv(solution)
    submission.write(table.assign(Location=table["Location"] + 1.5), shifted)
    rmse, _ = submission.score(shifted, solution)
    assert rmse == pytest.approx(1.5, abs=1e-3)


def test_score_reports_missing_and_bad_rows(tmp_path, shared_faces):
    solution = shared_faces / "solution.csv"
    table = pd.read_csv(solution)
    short = tmp_path / "short.csv"
    submission.write(table.iloc[:-3], short)
    with pytest.raises(DataError, match="has no row for RowId 7186"):
        submission.score(short, solution)
    bad = tmp_path / "bad.csv"
    bad.write_text("RowId,Location\n1,12.5\n2,abc\n")
    with pytest.raises(DataError, match="row 2, column Location: expected a number, found 'abc'"):
        submission.score(bad, solution)
    assert np.isfinite(submission.read_locations(solution)).all()
