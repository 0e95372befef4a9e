"""Exact resume: a run stopped at any moment and resumed trains what the run that never stopped
trains, to the same history and the same weights (training on this CPU is deterministic: two
whole runs give equal bits, which the first test relies on and checks)."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from facekeypoints.training import loop, runs
from facekeypoints.training import recipe as recipe_mod

from .paused import Paused

CLI = [sys.executable, "-m", "facekeypoints.cli"]
# `fast` as it is (flips, brightness and contrast drawn in the step, AdamW with warm-up and
# cosine, batch norm) on the 192 training rows of the synthetic faces: about a second an epoch.
# Both stops land in epoch 3 or 4, so a resume trains a whole epoch after the one it resumes.
EPOCHS = 5


def _quiet(_):
    pass


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory, synthetic_files):
    out = tmp_path_factory.mktemp("whole") / "run"
    return loop.train(recipe_mod.load("fast", {"epochs": EPOCHS}),
                      synthetic_files["training.csv"], out, log=_quiet, progress=False)


def _assert_same_training(run: runs.RunFolder, whole: runs.RunFolder) -> None:
    history, expected = run.read_history(), whole.read_history()
    assert [int(r["epoch"]) for r in history] == list(range(1, EPOCHS + 1))
    for got, want in zip(history, expected, strict=True):
        assert got["val_rmse"] == pytest.approx(want["val_rmse"], abs=1e-6), (history, expected)
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-6)
    for name in ("weights.npz", "optimizer.npz", "random.npz"):
        for a, b in zip(runs.load_arrays(run.checkpoint / name),
                        runs.load_arrays(whole.checkpoint / name), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert run.status == "finished"


def test_a_run_sigkilled_part_way_and_resumed_trains_what_the_whole_run_trains(
        tmp_path, synthetic_files, whole_run):
    out = tmp_path / "run"
    with Paused.train(["--recipe", "fast", "--data", synthetic_files["training.csv"], "--epochs",
                      EPOCHS, "--checkpoint-seconds", "0", "--progress", "off", "--out", out],
                     epoch=4, step=2, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL) as paused:
        paused.wait()  # two of epoch 4's steps trained, not yet checkpointed
        os.kill(paused.proc.pid, signal.SIGKILL)  # no chance to clean up
    run = runs.RunFolder(out)
    killed_at = run.state()["epoch"]
    assert killed_at == 3 and not run.model_file.exists()

    loop.train(None, None, out, resume=True, log=_quiet, progress=False)
    _assert_same_training(run, whole_run)


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C as a Python process in a terminal takes it (KeyboardInterrupt). pytest inherits
    SIGINT ignored when a non-interactive shell starts it as a background job (so do its
    workers), and a run is then never stopped: the test passed only where the notebook's test
    (nbclient installs Python's handler) had run before it in the same process."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_run_stopped_part_way_through_an_epoch_resumes_that_epochs_own_rows(
        tmp_path, synthetic_files, whole_run, monkeypatch, ctrl_c_raises):
    """Ctrl-C after 3 of epoch 3's 6 steps: the checkpoint then holds half an epoch, and the
    resume trains the other half of that epoch's rows with the same random draws."""
    recipe = recipe_mod.load("fast", {"epochs": EPOCHS})
    steps, calls = -(-192 // recipe.batch_size), []
    train_batch = loop._train_batch

    def ctrl_c_in_epoch_3(trainer, data, rows):
        calls.append(len(rows))
        if len(calls) == 2 * steps + 3:
            os.kill(os.getpid(), signal.SIGINT)  # held until the step is recorded
        return train_batch(trainer, data, rows)

    monkeypatch.setattr(loop, "_train_batch", ctrl_c_in_epoch_3)
    out = tmp_path / "run"
    with pytest.raises(runs.RunInterrupted):
        loop.train(recipe, synthetic_files["training.csv"], out, log=_quiet, progress=False)
    monkeypatch.setattr(loop, "_train_batch", train_batch)
    run = runs.RunFolder(out)
    iterations = int(runs.load_arrays(run.checkpoint / "optimizer.npz")[0])
    assert run.state()["epoch"] == 2 and iterations == 2 * steps + 3

    said = []
    loop.train(None, None, out, resume=True, log=said.append, progress=False)
    assert f"(3 of its next {steps} batches already trained)" in said[0]
    _assert_same_training(run, whole_run)


def test_a_run_stopped_at_its_time_limit_and_resumed_without_one_finishes_unlimited(
        tmp_path, synthetic_files):
    recipe = recipe_mod.load("model1", {"epochs": 3})
    out = tmp_path / "run"
    said = []
    run = loop.train(recipe, synthetic_files["training.csv"], out, log=said.append,
                     max_seconds=1e-9, progress=False)
    assert run.summary()["stopped_at_time_limit"] and "at the time limit" in said[-1]
    said.clear()
    loop.train(None, None, out, resume=True, log=said.append, progress=False)
    assert [int(r["epoch"]) for r in run.read_history()] == [1, 2, 3]
    assert not run.summary()["stopped_at_time_limit"] and run.status == "finished"
    assert not any("time limit" in line for line in said), said
