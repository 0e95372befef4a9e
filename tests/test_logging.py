"""What a person watching a run sees: progress (bar, widget or lines), TensorBoard logs, and
training spread over two devices (logical CPUs stand in for GPUs here)."""

import subprocess
import sys

import numpy as np
import pytest

import facekeypoints as fk
from facekeypoints import progress

from .cli_helpers import run_here


def test_tensorboard_logs_read_back_as_tensorboard_reads_them(tmp_path, synthetic_files):
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = fk.train("fast", synthetic_files["training.csv"], tmp_path / "run", epochs=3,
                   tensorboard=True, progress=False, log=None)
    history = run.history

    def read(part):
        events = EventAccumulator(str(run.path / "tensorboard" / part),
                                  size_guidance={"tensors": 0})
        events.Reload()
        return {tag: [(e.step, tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
                for tag in events.Tags()["tensors"]}

    train, validation = read("train"), read("validation")
    assert {"epoch_loss", "learning_rate", "momentum"} <= set(train)
    assert [step for step, _ in validation["rmse_px"]] == [1, 2, 3]
    np.testing.assert_allclose([float(v) for _, v in validation["rmse_px"]],
                               history["val_rmse"], rtol=1e-4)
    np.testing.assert_allclose([float(v) for _, v in train["epoch_loss"]],
                               history["train_loss"], rtol=1e-4)
    np.testing.assert_allclose([float(v) for _, v in train["learning_rate"]],
                               history["learning_rate"], rtol=1e-4)
    pictures = [tag for tag in validation if tag.startswith("faces")]
    assert pictures, validation.keys()
    # an image summary is [width, height, encoded PNG]; the faces strip is 8 faces at 2x
    width, height, png = validation[pictures[0]][0][1]
    assert (int(width), int(height)) == (8 * 192, 192) and png[:4] == b"\x89PNG"


def test_two_replica_training_on_logical_cpu_devices(tmp_path, synthetic_files):
    """The data-parallel path several GPUs take (MirroredStrategy), on this CPU split in two.

    A subprocess: the split must come before TensorFlow starts. `fast` with narrow layers (8
    filters, 32 units): the path is the same, and the split's per-step cost the same, but each
    step's work a fraction (measured: val_rmse 17.3 -> 9.7 px in 4 epochs on two devices, 10.1
    on one; the saved model's within 0.7 % of the log)."""
    script = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import facekeypoints as fk
for name, devices in (("two", ["/cpu:0", "/cpu:1"]), ("one", None)):
    run = fk.train("fast", {str(synthetic_files["training.csv"])!r}, {str(tmp_path)!r} + "/" + name,
                   epochs=4, devices=devices, progress=False, conv=[[8, 3]] * 3, dense=[32, 32])
    h = run.history
    print(name, h["val_rmse"].iloc[0], h["val_rmse"].iloc[-1], fk.evaluate(run, tta=False).rmse)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "data-parallel over 2 devices" in done.stdout
    figures = {line.split()[0]: [float(v) for v in line.split()[1:]]
               for line in done.stdout.splitlines() if line.split()[:1] in (["two"], ["one"])}
    first, last, evaluated = figures["two"]
    assert last < first  # it learns
    # the saved model is the one logged (evaluate clips points to the image; the log does not)
    assert evaluated == pytest.approx(last, rel=0.02)
    assert last < 1.5 * figures["one"][1]  # the same kind of result as one device


def test_progress_lines_say_where_a_run_is_and_when_it_ends():
    lines = []
    with progress.Progress(40, "model2", "epoch", mode="lines", log=lines.append,
                           every=3600) as bar:
        for epoch in range(40):
            bar.update(1, val_rmse=f"{3 - epoch / 40:.3f} px")
    assert lines[0].startswith("model2 1/40 epochs  elapsed 0:00  eta 0:00")
    assert lines[-1].startswith("model2 40/40 epochs") and "val_rmse 2.025 px" in lines[-1]
    assert "eta" not in lines[-1] and len(lines) == 2  # first and last; the rest throttled


@pytest.mark.parametrize(("mode", "expected"), [("off", "off"), (False, "off"),
                                                 ("lines", "lines"), ("bar", "bar")])
def test_progress_mode_is_the_users_choice(mode, expected):
    assert progress.choose(mode) == expected


def test_progress_outside_a_terminal_or_notebook_is_plain_lines(monkeypatch):
    monkeypatch.delenv("FACEKEYPOINTS_PROGRESS", raising=False)
    assert progress.choose("auto") == "lines"  # pytest's stderr is no terminal
    monkeypatch.setenv("FACEKEYPOINTS_PROGRESS", "off")
    assert progress.choose("auto") == "off"


def test_the_training_command_shows_epochs_eta_and_validation_rmse(tmp_path, synthetic_files):
    """The command's own output, outside a terminal (lines); run in this process, since a new
    interpreter would only add TensorFlow's import (the terminal's bar, below, needs one)."""
    done = run_here("train", "--recipe", "model1", "--data", synthetic_files["training.csv"],
                    "--epochs", "5", "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    shown = [line for line in done.stdout.splitlines() if line.startswith("model1 ")]
    assert shown[0].startswith("model1 1/5 epochs") and "eta" in shown[0]
    assert shown[-1].startswith("model1 5/5 epochs") and "val_rmse" in shown[-1]


def test_a_progress_bar_in_a_terminal(tmp_path, synthetic_files):
    """Under a pseudo-terminal the command draws tqdm's bar instead of lines."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns
    proc = subprocess.Popen([sys.executable, "-m", "facekeypoints.cli", "train", "--recipe",
                             "model1", "--data", str(synthetic_files["training.csv"]),
                             "--epochs", "5", "--out", str(tmp_path / "run")],
                            stdout=subprocess.PIPE, stderr=secondary, text=True)
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=300)
    os.close(main)
    assert proc.returncode == 0
    text = seen.decode(errors="replace")
    assert "5/5" in text and "epoch" in text and "val_rmse" in text and "\r" in text
