"""The command line as a user meets it: one-line errors with exit code 2, never a traceback."""

import pytest

from .cli_helpers import one_line_error, run_here


def test_recipes_lists_and_prints():
    listed = run_here("recipes")
    assert listed.returncode == 0
    assert "model7" in listed.stdout and "early stopping" in listed.stdout
    shown = run_here("recipes", "model4")
    assert shown.returncode == 0 and "momentum_end = 0.999" in shown.stdout


def test_bad_pixels_in_training_data(tmp_path, synthetic_files):
    lines = synthetic_files["training.csv"].read_text().splitlines()
    lines[3] = lines[3][:-4] + " 999"
    bad = tmp_path / "training.csv"
    bad.write_text("\n".join(lines) + "\n")
    one_line_error(run_here("train", "--recipe", "model1", "--data", bad, "--out",
                            tmp_path / "r"),
                   str(bad), "row 3", "column Image", "999")


@pytest.mark.parametrize(("args", "fragments"), [
    (["train", "--recipe", "model42", "--data", "x.csv"], ["unknown recipe 'model42'"]),
    (["train", "--recipe", "model1", "--data", "nope.csv"], ["nope.csv: no such file"]),
    (["train", "--recipe", "model1", "--data", "x.csv", "--set", "epochz=3"], ["epochz"]),
    (["train", "--resume"], ["--resume needs --out"]),
    (["train", "--recipe", "model1", "--data", "x.csv", "--epochs", "0"], ["--epochs"]),
    (["evaluate", "no-such-run"], ["no-such-run"]),
    (["score", "nope.csv", "--solution", "nope.csv"], ["nope.csv: no such file"]),
])
def test_user_mistakes_are_one_line(tmp_path, args, fragments):
    one_line_error(run_here(*args, cwd=tmp_path), *fragments)


def test_submit_with_a_lookup_naming_unknown_images(tmp_path, synthetic_files):
    run_dir = tmp_path / "run"
    trained = run_here("train", "--recipe", "model1", "--data",
                       synthetic_files["training.csv"], "--epochs", "1", "--out", run_dir)
    assert trained.returncode == 0, trained.stderr
    lookup = tmp_path / "lookup.csv"
    lookup.write_text("RowId,ImageId,FeatureName,Location\n1,1,nose_tip_x,\n2,999,nose_tip_y,\n")
    one_line_error(run_here("submit", run_dir, "--test", synthetic_files["test.csv"],
                            "--lookup", lookup, "--out", tmp_path / "s.csv"),
                    "lookup.csv", "row 2", "ImageId 999 is not in the test file")
    assert not (tmp_path / "s.csv").exists()


def test_evaluate_and_compare_say_which_figure_has_flip_tta_and_agree_with_the_api(
        tmp_path, synthetic_files):
    import re

    import facekeypoints as fk

    run_dir = tmp_path / "fast"
    fk.train("fast", synthetic_files["training.csv"], run_dir, epochs=1, progress=False, log=None)
    shown = run_here("evaluate", run_dir)
    assert shown.returncode == 0, shown.stderr
    overall = re.search(r"^overall\s+([\d.]+)\s+\(.*with flip TTA\)$", shown.stdout, re.M)
    without = re.search(r"^without flip TTA .*: ([\d.]+) px$", shown.stdout, re.M)
    assert overall and without, shown.stdout
    # the command line and the API give the same numbers on the same run
    assert float(overall.group(1)) == pytest.approx(fk.evaluate(run_dir).rmse, abs=6e-4)
    assert float(without.group(1)) == pytest.approx(fk.evaluate(run_dir, tta=False).rmse,
                                                    abs=6e-4)
    compared = run_here("compare", run_dir)
    assert compared.returncode == 0, compared.stderr
    assert "without flip test-time augmentation" in compared.stdout.splitlines()[-1]
    last_val = float(compared.stdout.splitlines()[1].split()[5])
    assert last_val == pytest.approx(float(without.group(1)), abs=2e-3)
    assert fk.compare(run_dir).loc[0, "last_val_px"] == pytest.approx(last_val, abs=6e-4)
