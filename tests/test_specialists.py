"""Specialists: group selection, per-group flips, transfer learning, the combined predictor."""

import json
import shutil

import numpy as np
import pytest

from facekeypoints import predict, specialists, training
from facekeypoints import recipe as recipe_mod
from facekeypoints.data import load_training
from facekeypoints.errors import UserError
from facekeypoints.keypoints import COLUMNS, flip_permutation

SMALL = {"conv": [[8, 3], [16, 2], [16, 2]], "dense": [32, 32], "dropout": [], "epochs": 2,
         "patience": 0, "batch_size": 32}


def test_model8_groups_cover_all_15_keypoints_once_with_their_own_flips():
    recipe = recipe_mod.load("model8")
    names = [k for group in recipe.groups.values() for k in group]
    assert sorted(names) == sorted({c[:-2] for c in COLUMNS}) and len(names) == 15
    corners = specialists.member_recipe(recipe, "eye_corners", recipe.groups["eye_corners"])
    perm = flip_permutation(corners.columns)
    named = {c: corners.columns[perm[i]] for i, c in enumerate(corners.columns)}
    assert named["left_eye_inner_corner_x"] == "right_eye_inner_corner_x"
    assert named["right_eye_outer_corner_y"] == "left_eye_outer_corner_y"


def test_each_specialist_trains_on_every_row_with_its_own_keypoints(synthetic_files):
    recipe = recipe_mod.load("model8")
    faces = load_training(synthetic_files["training.csv"])
    nose = specialists.member_recipe(recipe, "nose", recipe.groups["nose"])
    train_set, val_set = training.prepare_data(nose, synthetic_files["training.csv"])
    complete = training.prepare_data(recipe.replace(groups={}), synthetic_files["training.csv"])
    assert len(train_set) + len(val_set) == int((~np.isnan(faces.y[:, 20])).sum())
    assert len(train_set) > 2 * len(complete[0])  # far more rows than the dropna model sees


@pytest.fixture(scope="module")
def group_run(tmp_path_factory, synthetic_files):
    recipe = recipe_mod.load("model8", SMALL)
    out = tmp_path_factory.mktemp("group") / "model8"
    specialists.train_group(recipe, synthetic_files["training.csv"], out, log=lambda s: None)
    return out


def test_group_saves_and_loads_as_one_predictor_of_all_30_values(group_run, synthetic_files):
    model = predict.load(group_run)
    assert model.columns == list(COLUMNS)
    faces = load_training(synthetic_files["training.csv"])
    pred = model.predict(faces.X[:5])
    assert pred.shape == (5, 30) and np.isfinite(pred).all()
    # Each column comes from its own specialist.
    nose = predict.load(group_run / "nose")
    assert np.allclose(pred[:, 20:22], nose.predict(faces.X[:5]), atol=1e-5)


def test_a_missing_or_mismatched_member_is_a_clear_error(group_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(group_run, broken)
    shutil.rmtree(broken / "nose")
    with pytest.raises(UserError, match="specialist 'nose' is missing"):
        predict.load(broken)
    mismatched = tmp_path / "mismatched"
    shutil.copytree(group_run, mismatched)
    manifest = json.loads((mismatched / "specialists.json").read_text())
    manifest["groups"]["nose"] = ["nose_tip_y", "nose_tip_x"]
    (mismatched / "specialists.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="specialist 'nose' predicts"):
        predict.load(mismatched)


def test_transfer_copies_the_body_and_freezing_keeps_it_fixed(tmp_path, synthetic_files):
    base_recipe = recipe_mod.load("model7", SMALL)
    base = training.train(base_recipe, synthetic_files["training.csv"], tmp_path / "base",
                       log=lambda s: None)
    base_net = predict.load(base.path).net
    recipe = recipe_mod.load("model9", SMALL | {"pretrained": str(base.path),
                                                "freeze": "until:3", "epochs": 2,
                                                "groups": {"nose": ["nose_tip"]}})
    out = specialists.train_group(recipe, synthetic_files["training.csv"], tmp_path / "m9",
                                  log=lambda s: None)
    nose = predict.load(out.path / "nose").net
    # Frozen for all of its 2 epochs: every layer but the new 2-unit head is the base's.
    for mine, theirs in zip(nose.weights[:-2], base_net.weights[:-2], strict=True):
        assert np.array_equal(np.asarray(mine), np.asarray(theirs))
    assert nose.weights[-1].shape == (2,)

    conv_frozen = recipe.replace(freeze="conv", body_learning_rate=None)
    out2 = specialists.train_group(conv_frozen, synthetic_files["training.csv"],
                                   tmp_path / "m9conv", log=lambda s: None)
    conv_net = predict.load(out2.path / "nose").net
    assert np.array_equal(np.asarray(conv_net.weights[0]), np.asarray(base_net.weights[0]))
    assert not np.array_equal(np.asarray(conv_net.weights[-4]), np.asarray(base_net.weights[-4]))


def test_transfer_from_a_different_architecture_is_refused(tmp_path, synthetic_files):
    base = training.train(recipe_mod.load("model1", {"epochs": 1}), synthetic_files["training.csv"],
                       tmp_path / "base", log=lambda s: None)
    recipe = recipe_mod.load("model9", SMALL | {"pretrained": str(base.path)})
    with pytest.raises(UserError, match="weighted layers"):
        specialists.train_group(recipe, synthetic_files["training.csv"], tmp_path / "m9",
                                log=lambda s: None)
