"""Training runs: run folders, resume after a real kill, extension, early stopping, interrupts."""

import json
import os
import signal
import subprocess

import numpy as np
import pytest

import facekeypoints as fk
from facekeypoints import data
from facekeypoints.errors import UserError
from facekeypoints.inference import loading
from facekeypoints.keypoints import COLUMNS, rmse_pixels
from facekeypoints.training import loop, runs
from facekeypoints.training import recipe as recipe_mod

from .cli_helpers import run_here
from .paused import Paused


def _epochs(run_dir):
    return [int(r["epoch"]) for r in runs.RunFolder(run_dir).read_history()]


def test_run_folder_holds_recipe_history_checkpoint_and_model(tmp_path, synthetic_files):
    recipe = recipe_mod.load("model1", {"epochs": 3})
    run = loop.train(recipe, synthetic_files["training.csv"], tmp_path / "run",
                         log=lambda s: None)
    # the run records the columns it trained on: all 30 of the file's, none being named
    assert recipe.columns == [] and recipe_mod.load(str(run.recipe_file)) == recipe.replace(
        columns=list(COLUMNS))
    assert _epochs(run.path) == [1, 2, 3]
    history = run.read_history()
    assert set(runs.HISTORY_FIELDS) == set(history[0])
    assert all(r["val_rmse"] > 0 and r["seconds"] > 0 for r in history)
    assert history[-1]["elapsed"] == pytest.approx(sum(r["seconds"] for r in history), rel=1e-3)
    assert run.model_file.is_file() and json.loads(run.data_file.read_text())["split"] == "person"
    assert run.state()["epoch"] == 3
    model = loading.load(run.path)
    assert model.columns == list(COLUMNS) and model.scheme.name == "kaggle15"
    from facekeypoints.inference.evaluation import compare_runs, compare_table

    frame = compare_runs([run.path])
    best = min(r["val_rmse"] for r in history)
    assert frame.loc[0, ["run", "recipe", "epochs"]].tolist() == ["run", "model1", 3]
    assert frame.loc[0, "best_val_px"] == pytest.approx(best, abs=1e-6)
    table = compare_table(frame).splitlines()
    assert table[0].split()[:3] == ["run", "recipe", "epochs"]
    assert table[1].split()[:3] == ["run", "model1", "3"]
    assert float(table[1].split()[3]) == pytest.approx(best, abs=1e-3)
    assert "without flip test-time augmentation" in table[-1]


def test_existing_run_folder_is_not_overwritten(tmp_path, synthetic_files):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="pass --resume"):
        loop.train(recipe_mod.load("model1"), synthetic_files["training.csv"], tmp_path / "run")


def test_run_killed_mid_training_resumes_to_one_continuous_history(tmp_path, synthetic_files):
    out = tmp_path / "run"
    with Paused.train(["--recipe", "model1", "--data", synthetic_files["training.csv"],
                      "--epochs", "12", "--checkpoint-seconds", "0", "--out", out],
                     epoch=6, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                     text=True) as paused:
        paused.wait()  # at epoch 6's start (model1 takes one step an epoch here)
        os.kill(paused.proc.pid, signal.SIGKILL)  # no chance to clean up
    killed_at = runs.RunFolder(out).state()["epoch"]
    assert killed_at == 5 and not (out / "model.keras").exists()

    # the kill needs a process of its own; the resume is the command's work, run here
    done = run_here("train", "--out", out, "--resume")
    assert done.returncode == 0, done.stderr
    assert f"resuming {out} at epoch {killed_at}" in done.stdout
    assert _epochs(out) == list(range(1, 13))
    assert (out / "model.keras").is_file()


def test_a_killed_adamw_cosine_run_resumes_its_schedule_and_optimiser_state(
        tmp_path, synthetic_files):
    """A resume that silently started again would restart the warm-up, reset the optimiser's
    step count and number its epochs from 1: each is checked."""
    out = tmp_path / "fast"
    run = runs.RunFolder(out)
    with Paused.train(["--recipe", "fast", "--data", synthetic_files["training.csv"],
                      "--epochs", "10", "--set", "conv=[[4,3],[4,3],[4,3]]", "--set",
                      "dense=[8,8]", "--checkpoint-seconds", "0", "--out", out],
                     epoch=5, step=2, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL) as paused:
        paused.wait()  # two steps into epoch 5: four epochs checkpointed
        assert run.status == "running"
        with pytest.raises(UserError, match="still running"):
            runs.RunFolder.claim(out, resume=True)
        os.kill(paused.proc.pid, signal.SIGKILL)
    killed_at = run.state()["epoch"]
    assert killed_at == 4 and run.status == "interrupted"

    loop.train(None, None, out, resume=True, log=lambda s: None, progress=False)
    history = run.read_history()
    assert [int(r["epoch"]) for r in history] == list(range(1, 11))
    rates = [r["learning_rate"] for r in history]
    assert all(b < a for a, b in zip(rates[1:], rates[2:], strict=False)), rates  # cosine
    steps = -(-json.loads(run.data_file.read_text())["train_rows"] // run.load_recipe().batch_size)
    assert int(runs.load_arrays(run.checkpoint / "optimizer.npz")[0]) == 10 * steps
    assert run.status == "finished" and run.summary()["epoch"] == 10


def test_a_finished_run_can_be_extended_past_its_planned_epochs(tmp_path, synthetic_files):
    recipe = recipe_mod.load("model1", {"epochs": 2})
    run = loop.train(recipe, synthetic_files["training.csv"], tmp_path / "run",
                      log=lambda s: None)
    before = loading.load(run.path).net.get_weights()
    loop.train(None, None, run.path, resume=True, epochs=5, log=lambda s: None)
    assert _epochs(run.path) == [1, 2, 3, 4, 5]
    assert run.load_recipe().epochs == 5
    after = loading.load(run.path).net.get_weights()
    assert not np.allclose(before[0], after[0])


def test_early_stopping_restores_the_best_weights(tmp_path, synthetic_files):
    # A learning rate this high makes validation loss worse after the first epochs.
    recipe = recipe_mod.load("model1", {"epochs": 60, "patience": 3, "learning_rate": 0.2})
    run = loop.train(recipe, synthetic_files["training.csv"], tmp_path / "run",
                      log=lambda s: None)
    history = run.read_history()
    best = min(history, key=lambda r: r["val_loss"])
    assert len(history) == best["epoch"] + 3 < 60
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["stopped_early"] and summary["best_epoch"] == best["epoch"]
    _, val = data.prepare_data(recipe, synthetic_files["training.csv"])
    pred = loading.load(run.path).predict_scaled(val.X)
    assert rmse_pixels(val.y, pred) == pytest.approx(best["val_rmse"], rel=1e-3)


def test_a_run_that_stopped_early_and_is_extended_gets_its_patience_again(tmp_path,
                                                                           synthetic_files):
    # a learning rate too small to move a weight: validation never improves after epoch 1
    recipe = recipe_mod.load("model1", {"epochs": 20, "patience": 2, "learning_rate": 1e-12})
    run = loop.train(recipe, synthetic_files["training.csv"], tmp_path / "run",
                     log=lambda s: None)
    assert _epochs(run.path) == [1, 2, 3] and run.summary()["stopped_early"]
    lines = []
    loop.train(None, None, run.path, resume=True, epochs=20, log=lines.append)
    assert _epochs(run.path) == [1, 2, 3, 4, 5], lines  # two more epochs of patience, not one
    summary = run.summary()
    assert summary["stopped_early"] and summary["best_epoch"] == 1
    assert any("stopped early at epoch 3; training on" in line for line in lines), lines
    loop.train(None, None, run.path, resume=True, log=lines.append)  # no --epochs: stays put
    assert _epochs(run.path) == [1, 2, 3, 4, 5]


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(tmp_path, synthetic_files):
    out = tmp_path / "run"
    with Paused.train(["--recipe", "model1", "--data", synthetic_files["training.csv"],
                      "--epochs", "50", "--out", out], epoch=4, stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE, text=True) as paused:
        paused.wait()  # at epoch 4's start, three epochs trained
        paused.proc.send_signal(signal.SIGTERM)
        _, err = paused.proc.communicate(timeout=120)
    assert paused.proc.returncode == 2
    assert "interrupted at epoch 3" in err and "--resume" in err and "Traceback" not in err
    assert (out / "model.keras").is_file() and runs.RunFolder(out).state()["epoch"] == 3


def test_a_sigterm_at_an_epochs_end_waits_for_its_record(synthetic_files):
    """A signal that lands while an epoch's last step is recorded is held until the record is
    written: the step count then matches the epochs recorded, which is what a resume reads (a
    CI run once resumed an epoch whose steps had all run, training it twice)."""
    import keras

    recipe = recipe_mod.load("model1", {"epochs": 3, "batch_size": 64, "dropna": False})
    train_set, _ = data.prepare_data(recipe, synthetic_files["training.csv"])
    net = keras.Sequential([keras.Input((96, 96, 1)), keras.layers.Flatten(),
                            keras.layers.Dense(len(train_set.columns))])
    trainer = loop.build_trainer(recipe.replace(columns=train_set.columns), net, len(train_set))
    ended = []

    class SignalThenRecord(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                os.kill(os.getpid(), signal.SIGTERM)
            ended.append((epoch, int(trainer.optimizer.iterations.numpy())))

    previous = signal.signal(signal.SIGTERM, loop._raise_interrupt)
    try:
        with pytest.raises(loop._Interrupted):
            loop.fit_epochs(trainer, train_set, 64, epochs=3, callbacks=[SignalThenRecord()])
    finally:
        signal.signal(signal.SIGTERM, previous)
    steps = -(-len(train_set) // 64)
    assert ended == [(0, steps)]


@pytest.mark.parametrize("name", ["fast", "model5"])
def test_recipes_train_as_on_a_gpu_in_mixed_float16_under_xla(name, synthetic_files):
    """A GPU run's configuration, on the CPU: float16 compute (our fused batch norm and the
    optimiser's loss scaling in play) and the train step compiled by XLA, with FastDropout."""
    import keras

    from facekeypoints.training import accelerator, models

    recipe = recipe_mod.load(name, {"precision": "mixed", "batch_size": 32, "dropna": False})
    try:
        with accelerator.training_scope(recipe):
            train_set, val_set = data.prepare_data(recipe, synthetic_files["training.csv"])
            recipe = recipe.replace(columns=train_set.columns)  # as a run resolves them
            net = models.build(recipe, len(recipe.columns))
            trainer = loop.build_trainer(recipe, net, len(train_set))
            trainer.jit_compile = keras.backend.backend() != "torch"
            before = net.get_weights()
            # one epoch (six steps) moves every weight; the XLA compile is most of the cost
            loop.fit_epochs(trainer, train_set, recipe.batch_size, epochs=1)
        assert keras.backend.standardize_dtype(net.layers[-1].compute_dtype) == "float32"
        assert any(keras.backend.standardize_dtype(layer.compute_dtype) == "float16"
                   for layer in net.layers)
        assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
        assert all(not np.allclose(a, b) for a, b in zip(before, net.get_weights(), strict=True))
        pred = models.predict_scaled(net, val_set.X[:8])  # float16 convs on a CPU are slow
        assert pred.dtype == np.float32 and np.isfinite(pred).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_mixed_precision_run_schedules_the_tutorials_learning_rate_and_momentum(
        tmp_path, synthetic_files):
    """On a GPU (precision auto) the optimiser is wrapped for loss scaling: the tutorial's
    falling learning rate and rising momentum still reach the SGD inside, epoch by epoch, and
    the history records its values (the wrapper has no momentum: the run stopped at epoch 1)."""
    import keras

    try:
        run = fk.train("model4", synthetic_files["training.csv"], tmp_path / "run", epochs=3,
                       precision="mixed", conv=[[4, 3], [4, 2], [4, 2]], dense=[8, 8],
                       progress=False, log=None)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    history = run.history
    assert list(history["epoch"]) == [1, 2, 3]
    rates, momenta = list(history["learning_rate"]), list(history["momentum"])
    assert rates[0] > rates[1] > rates[2] and momenta[0] < momenta[1] < momenta[2], history
    assert momenta[0] == pytest.approx(0.9, abs=1e-6) and rates[0] == pytest.approx(0.03)


def test_a_measured_mirror_axis_is_kept_and_travels_with_the_model(tmp_path, synthetic_files,
                                                                    tiny_run):
    """`mirror = "measured"` measures the labels' mirror axis once (the face mesh), keeps it in
    the run folder, and flip TTA un-mirrors about it wherever the model goes: the run folder,
    its .keras file and its ONNX export predict alike."""
    from facekeypoints.inference.export import export_onnx
    from facekeypoints.keypoints import MIRROR_X, x_mask
    from facekeypoints.schemes import builtin

    settings = {"epochs": 1, "conv": [[8, 3], [8, 2], [8, 2]], "dense": [16, 16], "tta": True,
                "flip": True, "mirror": "measured"}
    run = loop.train(recipe_mod.load("model2", settings), synthetic_files["training.csv"],
                         tmp_path / "run", log=lambda s: None)
    axis = np.array(json.loads(run.mirror_file.read_text()))
    columns = run.load_recipe().columns
    is_x, perm = x_mask(columns), builtin("kaggle15").flip_permutation(columns)
    assert (axis[~is_x] == MIRROR_X).all() and np.isfinite(axis).all()
    assert (axis == axis[perm]).all() and (axis[is_x] != MIRROR_X).all()
    # resuming reads the kept axis instead of measuring again
    assert (loop.measure_mirror_axis(run, run.load_recipe(), None, print, False) == axis).all()

    X = np.random.default_rng(0).uniform(0, 1, (4, 96, 96, 1)).astype(np.float32)
    from_run = loading.load(run.path)
    from_keras = loading.load(run.model_file)
    from_onnx = loading.load(export_onnx(from_run, tmp_path / "model.onnx"))
    for model in (from_run, from_keras, from_onnx):
        np.testing.assert_array_equal(np.broadcast_to(model.mirror_axis, axis.shape), axis)
    np.testing.assert_allclose(from_onnx.predict(X), from_run.predict(X), atol=1e-3)
    assert np.abs(from_run.predict(X) - _tta_about(from_run, X, MIRROR_X)).max() > 0.1
    assert loading.load(tiny_run.path).mirror_axis == MIRROR_X  # mirror = "pixel"


def _tta_about(model, X, axis):
    model.mirror_axis, kept = axis, model.mirror_axis
    try:
        return model.predict(X)
    finally:
        model.mirror_axis = kept
