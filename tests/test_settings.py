"""Settings reach the run by every route (options, --set, the Python API), are checked the same
way, and a setting named twice with different values is an error naming both (issue 11).

The command line runs in this process (`run_here`): what is tested is what a command does with
its settings, not a fresh interpreter, which would import TensorFlow again for every call."""

import re

import pytest

import facekeypoints as fk
from facekeypoints.errors import UserError
from facekeypoints.training import recipe as recipe_mod

from .cli_helpers import one_line_error, run_here


def test_every_setting_with_an_option_of_its_own_also_works_through_set(tmp_path,
                                                                        synthetic_files):
    out = tmp_path / "run"
    done = run_here("train", "--recipe", "model1", "--data", synthetic_files["training.csv"],
               "--set", "epochs=2", "--set", "batch_size=7", "--set", "learning_rate=0.05",
               "--set", "patience=4", "--set", "seed=5", "--set", "validation=0.25",
               "--set", "momentum=0.5", "--set", "tensorboard=true", "--progress", "off",
               "--out", out)
    assert done.returncode == 0, done.stderr
    resolved = recipe_mod.load(str(out / "recipe.toml"))
    assert (resolved.epochs, resolved.batch_size, resolved.learning_rate, resolved.patience,
            resolved.seed, resolved.validation, resolved.momentum, resolved.tensorboard) \
        == (2, 7, 0.05, 4, 5, 0.25, 0.5, True)
    assert len(fk.Run(out).history) == 2
    assert (out / "tensorboard").is_dir()


def test_options_and_the_same_value_through_set_agree(tmp_path, synthetic_files):
    out = tmp_path / "run"
    done = run_here("train", "--recipe", "model1", "--data", synthetic_files["training.csv"],
               "--epochs", "1", "--set", "epochs=1", "--batch-size", "16",
               "--learning-rate", "0.02", "--out", out)
    assert done.returncode == 0, done.stderr
    resolved = recipe_mod.load(str(out / "recipe.toml"))
    assert (resolved.epochs, resolved.batch_size, resolved.learning_rate) == (1, 16, 0.02)


@pytest.mark.parametrize(("args", "fragments"), [
    (["--learning-rate", "0.01", "--set", "learning_rate=0.5"],
     ["learning_rate is given twice", "--learning-rate 0.01", "--set learning_rate=0.5"]),
    (["--set", "batch_size=7", "--set", "batch_size=8"],
     ["batch_size is given twice", "--set batch_size=7", "--set batch_size=8"]),
    (["--epochs", "3", "--set", "epochs=4"], ["--epochs 3", "--set epochs=4"]),
    (["--tensorboard", "--set", "tensorboard=false"], ["--tensorboard", "tensorboard=false"]),
])
def test_a_setting_named_twice_with_different_values_is_one_line_naming_both(
        tmp_path, synthetic_files, args, fragments):
    one_line_error(run_here("train", "--recipe", "model1", "--data",
                            synthetic_files["training.csv"], *args, "--out", tmp_path / "run"),
                   *fragments)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("args", "fragments"), [
    (["--set", "learning_rate=abc"], ["--set learning_rate=abc: expected a number"]),
    (["--set", "learning_rate=-1"], ["--set learning_rate=-1: expected a positive number"]),
    (["--learning-rate", "-1"], ["--learning-rate", "-1"]),
    (["--set", "batch_size=2.5"], ["--set batch_size=2.5: expected a whole number"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--set", "batch_size=0"], ["--set batch_size=0: expected a positive whole number"]),
    (["--set", "momentum=1.5"], ["--set momentum=1.5: expected a fraction"]),
    (["--set", "validation=1"], ["--set validation=1: expected a fraction"]),
    (["--set", "patience=-2"], ["--set patience=-2: expected a number of at least 0"]),
    (["--set", "seed=x"], ["--set seed=x: expected a whole number"]),
    (["--set", "flip=yes"], ["--set flip=yes: expected true or false"]),
    (["--set", "dense=[500, 0]"], ["--set dense=[500, 0]: expected layer sizes"]),
    (["--set", "optimizer=adam"], ["--set optimizer=adam: expected sgd or adamw"]),
    (["--set", "epochz=3"], ["--set epochz=3: unknown setting(s) epochz"]),
    (["--set", "learning_rate"], ["--set learning_rate: expected KEY=VALUE"]),
])
def test_a_bad_value_through_the_command_line_is_one_line_naming_the_option(
        tmp_path, synthetic_files, args, fragments):
    one_line_error(run_here("train", "--recipe", "model1", "--data",
                            synthetic_files["training.csv"], *args, "--out", tmp_path / "run"),
                   *fragments)


def test_a_bad_value_in_a_recipe_file_names_the_file_and_setting(tmp_path, synthetic_files):
    mine = tmp_path / "mine.toml"
    mine.write_text('extends = "model1"\nlearning_rate = "fast"\n')
    one_line_error(run_here("train", "--recipe", mine, "--data",
                            synthetic_files["training.csv"]),
                   f"{mine}: learning_rate = 'fast': expected a number")
    mine.write_text('extends = "model1"\nmomentum = 1.0\n')
    one_line_error(run_here("train", "--recipe", mine, "--data",
                            synthetic_files["training.csv"]),
                   f"{mine}: momentum = 1.0: expected a fraction from 0 to below 1")


@pytest.mark.parametrize(("settings", "message"), [
    ({"learning_rate": -1}, "learning_rate=-1: expected a positive number"),
    ({"learning_rate": "0.1"}, "learning_rate='0.1': expected a number"),
    ({"batch_size": 2.5}, "batch_size=2.5: expected a whole number"),
    ({"optimizer": "adam"}, "optimizer='adam': expected sgd or adamw"),
    ({"epochz": 3}, "epochz=3: unknown setting(s) epochz"),
])
def test_a_bad_value_through_the_python_api_is_the_same_error(tmp_path, synthetic_files,
                                                              settings, message):
    with pytest.raises(UserError, match=re.escape(message)):
        fk.get_recipe("model1", **settings)
    with pytest.raises(UserError, match=re.escape(message)):
        fk.train("model1", synthetic_files["training.csv"], tmp_path / "run", progress=False,
                 log=None, **settings)
    assert not (tmp_path / "run").exists()


def test_the_python_api_changes_a_recipe_object_with_the_same_checks():
    base = fk.get_recipe("fast")
    changed = fk.get_recipe(base, learning_rate=0.001, optimizer="adamw")
    assert (changed.learning_rate, changed.optimizer, changed.epochs) == (0.001, "adamw", 25)
    with pytest.raises(UserError, match="momentum=2: expected a fraction"):
        fk.get_recipe(base, momentum=2)


def test_specialists_get_the_learning_rate_given_with_set(tmp_path, synthetic_files):
    """The trap the issue names: --set learning_rate with a group recipe trained at its own."""
    out = tmp_path / "group"
    small = ["--set", "conv=[[4, 3], [4, 2], [4, 2]]", "--set", "dense=[8, 8]"]
    done = run_here("train", "--recipe", "model8", "--data", synthetic_files["training.csv"],
               "--epochs", "1", "--set", "optimizer=adamw", "--set", "learning_rate=0.001",
               *small, "--progress", "off", "--out", out)
    assert done.returncode == 0, done.stderr
    for member in fk.Run(out).members:
        assert (member.recipe.optimizer, member.recipe.learning_rate) == ("adamw", 0.001)


def test_resume_keeps_the_recipe_and_refuses_new_settings(tmp_path, synthetic_files):
    out = tmp_path / "run"
    fk.train("model1", synthetic_files["training.csv"], out, epochs=1, progress=False, log=None)
    one_line_error(run_here("train", "--out", out, "--resume", "--set", "learning_rate=0.5"),
                   "--set learning_rate=0.5: a resumed run keeps its recipe")
    one_line_error(run_here("train", "--out", tmp_path / "nothing-here", "--resume"),
                   "no run to resume there")
