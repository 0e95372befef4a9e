"""The public Python API: every docstring example runs, and the API is what the CLI calls."""

import doctest
import subprocess
import sys

import numpy as np
import pytest

import facekeypoints as fk
from facekeypoints import api
from facekeypoints.errors import UserError
from facekeypoints.photos.scores import load_truth, match

from .conftest import SHARED


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_files):
    return fk.train("model1", synthetic_files["training.csv"],
                    tmp_path_factory.mktemp("api") / "model1", epochs=2, progress=False,
                    log=None)


def test_every_docstring_example_of_the_api_runs(tmp_path, synthetic_files, trained):
    globs = {"fk": fk, "np": np, "tmp": tmp_path, "tmp_faces": synthetic_files,
             "trained": trained.path, "SHARED": SHARED}
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tested, report = [], []
    for test in finder.find(api, "api", globs=dict(vars(api)) | globs):
        if test.examples:
            runner.run(test, out=report.append)
            tested.append(test.name.rsplit(".", 1)[-1])
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
    # every public function and class of the API carries an example
    documented = {name for name in api.__all__ if callable(getattr(api, name))
                  and getattr(api, name).__module__ == "facekeypoints.api"}
    assert documented <= set(tested), documented - set(tested)


def test_every_public_name_loads_from_the_package_and_has_a_docstring():
    for name in fk.__all__:
        value = getattr(fk, name)
        assert value is getattr(api, name)
        if callable(value):
            assert value.__doc__ and len(value.__doc__) > 40, name


def test_importing_the_package_does_not_import_tensorflow():
    code = ("import sys, facekeypoints as fk; fk.get_recipe('fast'); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "False False", done.stderr


def test_api_names_are_not_shadowed_by_submodules(trained):
    """`import facekeypoints.<module>` sets a package attribute; no module may share an API
    function's name, or `fk.train` would turn into a module once anything imports it."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(fk.__path__):
        importlib.import_module(f"facekeypoints.{module.name}")
        assert module.name not in fk.__all__, module.name
    assert callable(fk.train) and callable(fk.evaluate) and callable(fk.detect)


def test_a_run_is_its_run_folder_and_each_shared_name_means_one_thing(trained, tmp_path):
    """One run class: `fk.Run` is the stored run folder with the verbs above it, so `recipe`,
    `status`, `members` and the files mean the same through either name."""
    import os

    from facekeypoints.stored.runs import RunFolder

    folder = RunFolder(trained.path)
    assert isinstance(trained, RunFolder) and trained == folder and os.fspath(folder) == str(
        trained.path)
    assert isinstance(folder.recipe, fk.Recipe) and trained.recipe == folder.recipe
    assert trained.status == folder.status == "finished"
    assert trained.members == [trained] and folder.members == [folder]
    assert trained.recipe_file == folder.recipe_file and folder.recipe_file.is_file()
    assert folder.model_file.is_file() and isinstance(trained.model, fk.Predictor)
    assert len(trained.history) == len(folder.read_history()) == 2
    # a Run adds names (model, history, evaluate, plot_curves); it redefines none of the folder's
    shared = {name for name in vars(RunFolder) if not name.startswith("_")} & set(vars(fk.Run))
    assert shared == set(), shared
    with pytest.raises(UserError, match="not a run folder"):
        fk.Run(tmp_path)


def test_a_run_of_specialists_is_one_model_with_one_history(tmp_path, synthetic_files):
    run = fk.train("model8", synthetic_files["training.csv"], tmp_path / "group", epochs=1,
                   conv=[[4, 3], [4, 2], [4, 2]], dense=[8, 8], progress=False, log=None)
    assert len(run.members) == 6
    assert all(type(m) is fk.Run and m.status == "finished" for m in run.members)
    history = run.history
    assert sorted(set(history["member"])) == sorted(fk.get_recipe("model8").groups)
    X, _ = fk.load(synthetic_files["test.csv"])
    assert run.model.predict(X[:4]).shape == (4, 30)
    assert len(fk.compare(run)) == 6


def test_faces_in_any_shape_a_person_would_pass(trained, synthetic_files):
    X, _ = fk.load(synthetic_files["test.csv"])
    model = fk.load_model(trained)
    batch = model.predict(X[:3])
    np.testing.assert_allclose(model.predict(X[:3, :, :, 0]), batch, atol=1e-3)
    np.testing.assert_allclose(model.predict(X[0, :, :, 0]), batch[:1], atol=1e-3)
    with pytest.raises(fk.api.UserError, match=r"expected \(N, 96, 96, 1\)"):
        model.predict(np.zeros((2, 48, 48, 1)))


def test_detect_takes_a_path_or_an_array(trained):
    from PIL import Image

    path = SHARED / "photos" / "dlib" / "2007_007763.jpg"
    rgb = np.asarray(Image.open(path).convert("RGB"))
    by_path, by_array = fk.detect(path, trained), fk.detect(rgb, trained)
    assert len(by_path) == len(by_array) > 0
    np.testing.assert_allclose(by_path[0].keypoints, by_array[0].keypoints, atol=1e-3)
    grey = np.asarray(Image.open(path).convert("L"))  # a black-and-white photo: every face
    truth = [t for t in load_truth(path.parent / "keypoints15.csv") if t.file == path.name]
    assert None not in match(truth, [face.box for face in fk.detect(grey, trained)])


def test_an_average_turns_flip_tta_on_and_off_in_its_members_and_says_which(
        tmp_path, synthetic_files, trained):
    flipped = fk.train("model1", synthetic_files["training.csv"], tmp_path / "flipped",
                       epochs=1, flip=True, tta=True, learning_rate=0.05, progress=False,
                       log=None)
    both = fk.average(flipped, trained, out=tmp_path / "both", weights=[1, 1])
    assert both.tta  # a member predicts with flips
    faces = fk.validation_set(trained)
    with_tta, without = fk.evaluate(both, faces), fk.evaluate(both, faces, tta=False)
    assert with_tta.tta and not without.tta
    assert with_tta.rmse != without.rmse
    members = [fk.load_model(flipped).predict_scaled(faces.X, tta=False),
               fk.load_model(trained).predict_scaled(faces.X, tta=False)]
    np.testing.assert_allclose(both.predict_scaled(faces.X, tta=False),
                               (members[0] + members[1]) / 2, atol=1e-6)
    assert fk.evaluate(tmp_path / "both").faces == len(faces)  # its members' held-out people


def _own_scheme_file(tmp_path, synthetic_files):
    """Four of Kaggle's points renamed into a scheme of the user's, in a folder with no
    training_sources.csv (held out by row, as on Kaggle's own download)."""
    import pandas as pd

    frame = pd.read_csv(synthetic_files["training.csv"])
    names = {"left_eye_center": "left_eye", "right_eye_center": "right_eye",
             "nose_tip": "nose", "mouth_center_bottom_lip": "lip"}
    table = pd.DataFrame({f"{new}_{a}": frame[f"{old}_{a}"] for old, new in names.items()
                          for a in "xy"})
    table["Image"] = frame["Image"]
    folder = tmp_path / "own"
    folder.mkdir()
    table.to_csv(folder / "own.csv", index=False)
    (folder / "own.toml").write_text(f"points = {list(names.values())!r}\n".replace("'", '"')
                                     + 'eyes = [["left_eye"], ["right_eye"]]\n')
    return folder / "own.csv", folder / "own.toml"


def test_a_run_of_the_users_own_scheme_evaluates_on_its_held_out_faces(tmp_path,
                                                                        synthetic_files):
    data, scheme = _own_scheme_file(tmp_path, synthetic_files)
    run = fk.train("model1", data, tmp_path / "run", epochs=1, scheme=str(scheme),
                   progress=False, log=None)
    held_out = fk.validation_set(run)
    assert held_out.columns[:2] == ["left_eye_x", "left_eye_y"] and held_out.persons is None
    result = fk.evaluate(run)
    assert result.faces == len(held_out)
    assert result.rmse == pytest.approx(run.history["val_rmse"].iloc[-1], rel=1e-5)
    assert fk.evaluate(run, data).faces > result.faces  # the whole file, read by its scheme


def test_two_runs_split_by_row_average_with_weights_fitted_on_their_held_out_rows(
        tmp_path, synthetic_files):
    """Kaggle's download names no people: runs with one seed hold out the same rows. The
    fitted average is no worse on them than its better member (the grid holds each alone)."""
    data, scheme = _own_scheme_file(tmp_path, synthetic_files)
    runs = [fk.train("model1", data, tmp_path / name, epochs=1, scheme=str(scheme),
                     learning_rate=rate, progress=False, log=None)
            for name, rate in (("a", 0.01), ("b", 0.05))]
    both = fk.average(*runs, out=tmp_path / "both")
    faces = fk.validation_set(runs[0])
    members = [fk.evaluate(r, faces).rmse for r in runs]
    assert fk.evaluate(both, faces).rmse <= min(members) + 1e-6
    other = fk.train("model1", data, tmp_path / "c", epochs=1, scheme=str(scheme), seed=7,
                     progress=False, log=None)
    with pytest.raises(UserError, match="same split"):
        fk.average(runs[0], other, out=tmp_path / "mixed")
