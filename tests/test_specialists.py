"""Specialists: group selection, per-group flips, transfer learning, the combined predictor."""

import json
import shutil

import numpy as np
import pytest

from facekeypoints import data
from facekeypoints.data import load_training
from facekeypoints.errors import UserError
from facekeypoints.inference import loading
from facekeypoints.keypoints import COLUMNS
from facekeypoints.schemes import builtin
from facekeypoints.training import loop, specialists
from facekeypoints.training import recipe as recipe_mod

SMALL = {"conv": [[8, 3], [16, 2], [16, 2]], "dense": [32, 32], "dropout": [], "epochs": 2,
         "patience": 0, "batch_size": 32}


def test_model8_groups_cover_all_15_keypoints_once_with_their_own_flips():
    recipe = recipe_mod.load("model8")
    names = [k for group in recipe.groups.values() for k in group]
    assert sorted(names) == sorted({c[:-2] for c in COLUMNS}) and len(names) == 15
    corners = specialists.member_recipe(recipe, "eye_corners", recipe.groups["eye_corners"])
    perm = builtin("kaggle15").flip_permutation(corners.columns)
    named = {c: corners.columns[perm[i]] for i, c in enumerate(corners.columns)}
    assert named["left_eye_inner_corner_x"] == "right_eye_inner_corner_x"
    assert named["right_eye_outer_corner_y"] == "left_eye_outer_corner_y"


def test_each_specialist_trains_on_every_row_with_its_own_keypoints(synthetic_files):
    recipe = recipe_mod.load("model8")
    faces = load_training(synthetic_files["training.csv"])
    nose = specialists.member_recipe(recipe, "nose", recipe.groups["nose"])
    train_set, val_set = data.prepare_data(nose, synthetic_files["training.csv"])
    complete = data.prepare_data(recipe.replace(groups={}), synthetic_files["training.csv"])
    assert len(train_set) + len(val_set) == int((~np.isnan(faces.y[:, 20])).sum())
    assert len(train_set) > 2 * len(complete[0])  # far more rows than the dropna model sees


@pytest.fixture(scope="module")
def group_run(tmp_path_factory, synthetic_files):
    recipe = recipe_mod.load("model8", SMALL)
    out = tmp_path_factory.mktemp("group") / "model8"
    specialists.train_group(recipe, synthetic_files["training.csv"], out, log=lambda s: None)
    return out


def test_group_saves_and_loads_as_one_predictor_of_all_30_values(group_run, synthetic_files):
    model = loading.load(group_run)
    assert model.columns == list(COLUMNS)
    faces = load_training(synthetic_files["training.csv"])
    pred = model.predict(faces.X[:5])
    assert pred.shape == (5, 30) and np.isfinite(pred).all()
    # Each column comes from its own specialist.
    nose = loading.load(group_run / "nose")
    assert np.allclose(pred[:, 20:22], nose.predict(faces.X[:5]), atol=1e-5)


def test_a_missing_or_mismatched_member_is_a_clear_error(group_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(group_run, broken)
    shutil.rmtree(broken / "nose")
    with pytest.raises(UserError, match="specialist 'nose' is missing"):
        loading.load(broken)
    mismatched = tmp_path / "mismatched"
    shutil.copytree(group_run, mismatched)
    manifest = json.loads((mismatched / "specialists.json").read_text())
    manifest["groups"]["nose"] = ["nose_tip_y", "nose_tip_x"]
    (mismatched / "specialists.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="specialist 'nose' predicts"):
        loading.load(mismatched)


def test_transfer_copies_the_body_and_freezing_keeps_it_fixed(tmp_path, synthetic_files):
    base_recipe = recipe_mod.load("model7", SMALL)
    base = loop.train(base_recipe, synthetic_files["training.csv"], tmp_path / "base",
                       log=lambda s: None)
    base_net = loading.load(base.path).net
    recipe = recipe_mod.load("model9", SMALL | {"pretrained": str(base.path),
                                                "freeze": "until:3", "epochs": 2,
                                                "groups": {"nose": ["nose_tip"]}})
    out = specialists.train_group(recipe, synthetic_files["training.csv"], tmp_path / "m9",
                                  log=lambda s: None)
    nose = loading.load(out.path / "nose").net
    # Frozen for all of its 2 epochs: every layer but the new 2-unit head is the base's.
    for mine, theirs in zip(nose.weights[:-2], base_net.weights[:-2], strict=True):
        assert np.array_equal(np.asarray(mine), np.asarray(theirs))
    assert nose.weights[-1].shape == (2,)

    conv_frozen = recipe.replace(freeze="conv", body_learning_rate=None)
    out2 = specialists.train_group(conv_frozen, synthetic_files["training.csv"],
                                   tmp_path / "m9conv", log=lambda s: None)
    conv_net = loading.load(out2.path / "nose").net
    assert np.array_equal(np.asarray(conv_net.weights[0]), np.asarray(base_net.weights[0]))
    assert not np.array_equal(np.asarray(conv_net.weights[-4]), np.asarray(base_net.weights[-4]))


def test_transfer_from_a_different_architecture_is_refused(tmp_path, synthetic_files):
    base = loop.train(recipe_mod.load("model1", {"epochs": 1}), synthetic_files["training.csv"],
                       tmp_path / "base", log=lambda s: None)
    recipe = recipe_mod.load("model9", SMALL | {"pretrained": str(base.path)})
    with pytest.raises(UserError, match="weighted layers"):
        specialists.train_group(recipe, synthetic_files["training.csv"], tmp_path / "m9",
                                log=lambda s: None)


def test_a_group_interrupted_mid_member_resumes_that_member_where_it_stopped(
        tmp_path, synthetic_files):
    """SIGTERM during the first specialist: the message names the group, and `--resume` of the
    group continues that member from its checkpoint (epochs and optimiser state) instead of
    taking its folder for finished."""
    import signal
    import subprocess

    from facekeypoints.training.runs import RunFolder, load_arrays

    from .cli_helpers import run_here
    from .paused import Paused

    out = tmp_path / "group"
    groups = 'groups={eyes=["left_eye_center","right_eye_center"],nose=["nose_tip"]}'
    with Paused.train(["--recipe", "model8", "--data", synthetic_files["training.csv"], "--out",
                      out, "--epochs", "10", "--set", groups, "--set",
                      "conv=[[4,3],[4,2],[4,2]]", "--set", "dense=[8,8]", "--set",
                      "dropout=[]"], epoch=4, stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE, text=True) as paused:
        paused.wait()  # the first specialist (eyes) at epoch 4's start, three epochs trained
        paused.proc.send_signal(signal.SIGTERM)
        _, err = paused.proc.communicate(timeout=120)
    proc = paused.proc
    eyes = RunFolder(out / "eyes")
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert f"continue with: facekeypoints train --out {out} --resume" in err
    stopped_at = eyes.state()["epoch"]
    assert stopped_at == 3 and eyes.status == "interrupted"
    assert RunFolder(out).status == "interrupted"
    assert not (out / "nose").exists()

    # the resume is no signal: it runs in this process (run_here), not a fresh interpreter
    done = run_here("train", "--out", out, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming {eyes.path} at epoch {stopped_at} of 10" in done.stdout
    assert [int(r["epoch"]) for r in eyes.read_history()] == list(range(1, 11))
    rows = json.loads(eyes.data_file.read_text())["train_rows"]
    batch = eyes.recipe.batch_size
    steps = -(-rows // batch)
    iterations = load_arrays(eyes.checkpoint / "optimizer.npz")[0]
    assert int(iterations) == 10 * steps  # not (10 - stopped_at) * steps: the state went on
    assert RunFolder(out).status == "finished" and RunFolder(out / "nose").status == "finished"


def test_transfer_learning_takes_one_keras_net_and_names_anything_else(
        tmp_path, group_run, tiny_onnx, synthetic_files):
    from facekeypoints.training import recipe as recipes

    mesh_run = tmp_path / "mesh"
    mesh_run.mkdir()
    (mesh_run / "recipe.toml").write_text(recipes.load("mesh").to_toml())
    for base, expected in [(group_run, "a group of specialists"), (tiny_onnx, "a .onnx file"),
                           (mesh_run, "a mesh run"), (tmp_path / "gone", "no such run")]:
        with pytest.raises(UserError, match=expected) as error:
            specialists.load_base(str(base))
        assert f"pretrained = {base}" in str(error.value) and "\n" not in str(error.value)


def test_a_group_and_an_average_of_it_travel_to_ray_workers_once_exported(
        group_run, tmp_path, synthetic_files):
    """Ray's workers load no TensorFlow: `export` writes each member's ONNX file, then a group
    of specialists and an average holding it travel as bytes and predict as here."""
    import facekeypoints as fk
    from facekeypoints.batch.model_spec import ModelSpec

    group = tmp_path / "model8"
    shutil.copytree(group_run, group)
    average = tmp_path / "both"
    fk.average(group, group, out=average, weights=[1, 1])
    with pytest.raises(UserError, match=f"facekeypoints export {average}"):
        ModelSpec.of(str(average))
    assert fk.export(average) == average  # each specialist's net, once
    assert all((m / "model.onnx").is_file() for m in group.iterdir() if m.is_dir())
    X = load_training(synthetic_files["training.csv"]).X[:6]
    for model in (group, average):
        spec, _ = ModelSpec.of(str(model))
        assert spec.files and not any(name.endswith(".keras") for name in spec.files)
        np.testing.assert_allclose(spec.load().predict(X), loading.load(model).predict(X),
                                   atol=1e-3)
