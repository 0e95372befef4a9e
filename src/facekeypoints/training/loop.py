"""The training loop: a recipe and a data file in, a run folder (runs.py) out; killed runs
resume where their last checkpoint stopped, optimiser state and epoch count included."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
from keras import ops

from ..data import Faces
from ..files import save_model_atomic
from ..keypoints import MIRROR_X, rmse_pixels, x_mask
from ..mesh import tune as mesh_tune
from ..progress import Progress
from ..schemes import Scheme
from ..stored import nets as models
from ..stored.nets import predict_scaled
from ..stored.recipe import Recipe
from . import optim
from .accelerator import replicas, training_scope
from .augment import Augment
from .losses import masked_mse
from .runs import RunFolder, RunInterrupted, data_record, load_arrays, training_data
from .tensorboard_log import TensorBoardLog


class KeypointTrainer(keras.Model):
    """The net plus what only training needs: in-graph augmentation and the masked loss."""

    def __init__(self, net: keras.Model, augment: Augment | None = None, **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.augment = augment

    def call(self, inputs, training=False):
        images, keypoints = inputs["image"], inputs["keypoints"]
        if training and self.augment is not None:
            images, keypoints = self.augment(images, keypoints)
        return {"pred": self.net(images, training=training), "target": keypoints}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = masked_mse(y_pred["target"], y_pred["pred"])
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss


# ----------------------------------------------------------------------------- training


class _Interrupted(Exception):
    pass


def _recipe_optimizer(net: keras.Model) -> keras.optimizers.Optimizer:
    """The recipe's optimizer, which mixed precision wraps in a LossScaleOptimizer: the one
    whose learning rate and momentum the schedule sets and the history records."""
    return getattr(net.optimizer, "inner_optimizer", net.optimizer)


class RunMonitor(keras.callbacks.Callback):
    """Schedules, validation, early stopping, history, checkpoints and progress, once per epoch."""

    def __init__(self, run: RunFolder, recipe: Recipe, net: keras.Model, val: Faces,
                 state: dict, best_weights, checkpoint_seconds: float,
                 max_seconds: float | None = None, progress: Progress | None = None,
                 board: TensorBoardLog | None = None):
        super().__init__()
        self.run, self.recipe, self.net, self.val = run, recipe, net, val
        self.state, self.best_weights = state, best_weights
        self.checkpoint_seconds = checkpoint_seconds
        self.max_seconds = max_seconds
        self.progress, self.board = progress, board
        self.last_checkpoint = time.monotonic()
        self.target_epochs = recipe.epochs
        self.session_seconds = 0.0  # this process's training time, which --max-minutes caps

    def on_epoch_begin(self, epoch, logs=None):
        r, opt = self.recipe, _recipe_optimizer(self.model)
        if r.optimizer == "sgd":
            opt.learning_rate.assign(optim.linear(r.learning_rate, r.learning_rate_end, epoch,
                                                  r.epochs))
            opt.set_momentum(optim.linear(r.momentum, r.momentum_end, epoch, r.epochs))
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        pred = predict_scaled(self.net, self.val.X)
        val_loss = float(np.nanmean((pred - self.val.y) ** 2)) if len(self.val) else float("nan")
        val_rmse = rmse_pixels(self.val.y, pred) if len(self.val) else float("nan")
        seconds = time.perf_counter() - self.epoch_start
        s = self.state
        s["epoch"] = epoch + 1
        s["elapsed"] = s.get("elapsed", 0.0) + seconds
        self.session_seconds += seconds
        opt = _recipe_optimizer(self.model)
        row = {
            "epoch": epoch + 1,
            "train_loss": float(logs.get("loss", float("nan"))),
            "val_loss": val_loss,
            "val_rmse": val_rmse,
            "learning_rate": optim.current_learning_rate(opt),
            "momentum": float(getattr(opt, "momentum", 0.0) or 0.0),
            "seconds": seconds,
            "elapsed": s["elapsed"],
        }
        logs.update(val_loss=val_loss, val_rmse=val_rmse)
        self.run.append_history(row)
        improved = not math.isnan(val_loss) and val_loss < s.get("best_val_loss", math.inf)
        if improved:
            s.update(best_val_loss=val_loss, best_val_rmse=val_rmse, best_epoch=epoch + 1, wait=0)
            if self.recipe.patience:
                self.best_weights = self.net.get_weights()
        else:
            s["wait"] = s.get("wait", 0) + 1
        stop = bool(self.recipe.patience) and s["wait"] >= self.recipe.patience
        if stop:
            s["stopped_early"] = True
        if self.max_seconds is not None and self.session_seconds >= self.max_seconds:
            stop = s["stopped_at_time_limit"] = True
        if stop:
            self.model.stop_training = True
        last = stop or epoch + 1 >= self.target_epochs
        if time.monotonic() - self.last_checkpoint >= self.checkpoint_seconds or last \
                or epoch == 0:
            self.save()
        if self.board is not None:
            self.board.write(epoch + 1, row, pred)
        if self.progress is not None:
            self.progress.update(1, loss=f"{row['train_loss']:.5f}", val_loss=f"{val_loss:.5f}",
                                 val_rmse=f"{val_rmse:.3f} px",
                                 lr=f"{row['learning_rate']:.4g}")

    def save(self) -> None:
        """Checkpoint the net and the optimiser as they are: after an interrupt, part way
        through the next epoch (the optimiser's step count says how far; see `train`)."""
        optimizer = [ops.convert_to_numpy(v) for v in self.model.optimizer.variables]
        self.run.save_checkpoint(self.net.get_weights(), optimizer, self.state,
                                 self.best_weights if self.recipe.patience else None,
                                 [ops.convert_to_numpy(v) for v in random_states(self.model)])
        self.last_checkpoint = time.monotonic()


def fit_epochs(trainer: KeypointTrainer, faces: Faces, batch_size: int, epochs: int,
               initial_epoch: int = 0, callbacks: list | None = None, seed: int = 0,
               skip_batches: int = 0, running: dict | None = None) -> None:
    """`Model.fit` without its input pipeline: shuffled NumPy batches into `train_on_batch`.

    Measured on this 2-core machine: under `fit`, whole epochs at random run on one core while
    the other idles (model2: 2.6 s instead of 1.3 s an epoch, in about half the epochs); fed
    this way every epoch takes 1.3 s. Several devices keep `fit`, which splits each batch.

    Each epoch's order of rows is a function of (seed, epoch) alone (`epoch_order`), so an
    epoch resumed part way trains the rows the uninterrupted run trains. `skip_batches`:
    batches of the first epoch already trained before an interrupt; `running["loss_sum"]`
    their summed loss on the way in, the epoch's so far on the way out (an interrupt saves it).
    Each step and its record happen together or not at all (interrupts wait for both)."""
    data = {"image": faces.X, "keypoints": faces.y}
    if replicas(trainer) > 1:
        trainer.fit(data, batch_size=batch_size, epochs=epochs, initial_epoch=initial_epoch,
                    shuffle=True, verbose=0, callbacks=callbacks)
        return
    running = running if running is not None else {}
    callback_list = keras.callbacks.CallbackList(callbacks or [], model=trainer)
    orders = epoch_orders(seed, len(faces), initial_epoch)
    trainer.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        order = next(orders)
        first = skip_batches if epoch == initial_epoch else 0
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if not first:
            running["loss_sum"] = 0.0
        running.setdefault("loss_sum", 0.0)  # a checkpoint from before it was recorded
        for rows in batches[first:-1]:
            with interrupts_held():
                running["loss_sum"] += _train_batch(trainer, data, rows)
        # the epoch's last step and its record (history row, checkpoint) happen together or
        # not at all: the optimiser's step count then always tells a resume where it stopped
        with interrupts_held():
            loss = (running.pop("loss_sum") + _train_batch(trainer, data, batches[-1])) \
                / len(order)
            callback_list.on_epoch_end(epoch, {"loss": loss})
        if trainer.stop_training:
            break
    callback_list.on_train_end()


def epoch_orders(seed: int, n: int, first_epoch: int = 0):
    """The order of rows in each epoch from `first_epoch` on: the same for a run resumed at
    any epoch as for the run that never stopped (one generator seeded with the run's seed,
    the earlier epochs' orders drawn and dropped)."""
    rng = np.random.default_rng([seed, 0])
    for _ in range(first_epoch):
        rng.permutation(n)
    while True:
        yield rng.permutation(n)


def random_states(trainer: keras.Model) -> list:
    """The state of every random generator in the train step (augmentation, dropout): each
    moves on by a fixed count a step, so saved with a checkpoint and restored, the draws after
    a resume are the draws the uninterrupted run makes."""
    return [v for v in trainer.variables if v.path.endswith("seed_generator_state")]


def _train_batch(trainer: KeypointTrainer, data: dict, rows: np.ndarray) -> float:
    logs = trainer.train_on_batch({k: v[rows] for k, v in data.items()}, return_dict=True)
    return float(logs["loss"]) * len(rows)


@contextlib.contextmanager
def interrupts_held():
    """Ctrl-C and SIGTERM wait until the block ends, then reach their usual handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = {s: signal.signal(s, lambda signum, frame: caught.append(signum))
            for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in held.items():
            signal.signal(s, handler)
    if caught:
        signal.raise_signal(caught[0])


def build_trainer(recipe: Recipe, net: keras.Model, n_train: int,
                  mirror_axis=MIRROR_X, scheme: Scheme | None = None) -> KeypointTrainer:
    augment = None
    if recipe.flip or recipe.rotate or recipe.shift or recipe.zoom or recipe.brightness \
            or recipe.contrast:
        augment = Augment(recipe.columns, recipe.flip, recipe.rotate, recipe.shift, recipe.zoom,
                          recipe.brightness, recipe.contrast, seed=recipe.seed,
                          mirror_axis=mirror_axis, scheme=scheme)
    trainer = KeypointTrainer(net, augment)
    steps = math.ceil(n_train / recipe.batch_size)
    trainer.compile(optimizer=optim.make_optimizer(recipe, steps))
    return trainer


def train(recipe: Recipe | None, data_path: str | Path | None, out: str | Path,
          resume: bool = False, epochs: int | None = None, checkpoint_seconds: float = 30.0,
          max_seconds: float | None = None, log: Callable[[str], None] = print,
          prepare: Callable | None = None, progress: str | bool | None = "auto",
          devices: list[str] | None = None, resume_hint: Path | None = None) -> RunFolder:
    """Train `recipe` on `data_path` into the run folder `out`, or resume the run there.

    `prepare(net, recipe)`, if given, readies a fresh net (transfer learning loads weights) and
    returns the net to train (sharing its layers) and extra callbacks. `progress` is a
    progress.MODES display; `devices` (e.g. two GPUs) trains data-parallel over them;
    `resume_hint` is the folder an interrupted run tells the user to resume (its group's).
    The run folder is held (`RunFolder.held`) until the run stops.
    """
    run, recipe, data_path = RunFolder.for_training(out, recipe, data_path, resume)
    with run.held():
        return _train_held(run, recipe, data_path, resume, epochs, checkpoint_seconds,
                           max_seconds, log, prepare, progress, devices, resume_hint)


def _train_held(run: RunFolder, recipe: Recipe, data_path: str | Path, resume: bool,
                epochs: int | None, checkpoint_seconds: float, max_seconds: float | None,
                log: Callable[[str], None], prepare: Callable | None,
                progress: str | bool | None, devices: list[str] | None,
                resume_hint: Path | None) -> RunFolder:
    state = (run.state() or {}) if resume else {}
    if resume and epochs:
        recipe = recipe.replace(epochs=epochs)
    recipe, scheme, train_set, val_set = training_data(run, recipe, data_path, log)
    run.begin(recipe, None if resume else data_record(data_path, recipe.columns, train_set,
                                                       val_set), scheme)
    axis = measure_mirror_axis(run, recipe, train_set, log, progress, scheme) \
        if recipe.flip and recipe.mirror == "measured" else MIRROR_X

    with training_scope(recipe, devices):
        net = models.build(recipe, len(recipe.columns))
        if recipe.model == "mesh-net":
            if not state:  # a resumed run's weights come from its checkpoint below
                mesh_tune.start_head(net, recipe, train_set, axis, log, progress)
            prepare = mesh_tune.body_schedule
        train_net, callbacks = prepare(net, recipe) if prepare else (net, [])
        trainer = build_trainer(recipe, train_net, len(train_set), axis, scheme)
        trainer.optimizer.build(trainer.trainable_variables)
    best_weights, skip = None, 0
    if state:
        folder = Path(state.pop("folder"))
        net.set_weights(load_arrays(folder / "weights.npz"))
        for variable, value in zip(trainer.optimizer.variables,
                                   load_arrays(folder / "optimizer.npz"), strict=True):
            variable.assign(value)
        if (folder / "best.npz").is_file():
            best_weights = load_arrays(folder / "best.npz")
        if (folder / "random.npz").is_file():  # older checkpoints: the draws start again
            for variable, value in zip(random_states(trainer),
                                       load_arrays(folder / "random.npz"), strict=True):
                variable.assign(value)
        run.truncate_history(state["epoch"])
        # a limit on time is the stopped process's: this one stops by its own, if any
        state.pop("stopped_at_time_limit", None)
        # an interrupt part way through an epoch saved the optimiser after its last step:
        # those batches are not trained again
        steps = math.ceil(len(train_set) / recipe.batch_size)
        done = int(ops.convert_to_numpy(trainer.optimizer.iterations)) - state["epoch"] * steps
        skip = done if 0 < done < steps else 0
        log(f"resuming {run.path} at epoch {state['epoch']} of {recipe.epochs}"
            + (f" ({skip} of its next {steps} batches already trained)" if skip else ""))
    start = state.get("epoch", 0)
    if state.get("stopped_early") and not epochs:
        log(f"{run.path}: the run already stopped early at epoch {start}")
        recipe = recipe.replace(epochs=start)
    elif state.get("stopped_early"):  # asked for more: patience counts again from here
        state.pop("stopped_early")
        state["wait"] = 0
        log(f"{run.path}: the run stopped early at epoch {start}; training on to epoch "
            f"{recipe.epochs}, the best so far {state.get('best_val_rmse', float('nan')):.3f} "
            f"px (epoch {state.get('best_epoch')}) to beat within {recipe.patience} epochs")

    parallel = replicas(trainer)
    log(f"training {recipe.name} on {len(train_set)} faces, validating on {len(val_set)} "
        f"(by {train_set.held_out_by})"
        + (f", data-parallel over {parallel} devices" if parallel > 1 else "")
        + f"; run folder {run.path}")
    board = TensorBoardLog(run.path / "tensorboard", val_set, recipe.columns, recipe.epochs) \
        if recipe.tensorboard else None
    bar = Progress(recipe.epochs, recipe.name, "epoch", initial=start, mode=progress, log=log)
    monitor = RunMonitor(run, recipe, net, val_set, state, best_weights, checkpoint_seconds,
                         max_seconds, bar, board)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if main_thread else None
    try:
        if start < recipe.epochs:
            fit_epochs(trainer, train_set, recipe.batch_size, recipe.epochs, start,
                       [*callbacks, monitor], seed=recipe.seed, skip_batches=skip,
                       running=monitor.state)
    except (KeyboardInterrupt, _Interrupted):
        if "epoch" not in state:  # nothing saved yet: a resume starts at epoch 1
            run.interrupt({})
            raise RunInterrupted(resume_hint or run.path) from None
        monitor.save()
        _save_model(run, net, recipe, monitor)
        run.interrupt(_figures(monitor.state))
        raise RunInterrupted(resume_hint or run.path, state.get("epoch", start)) from None
    finally:
        bar.close()
        if board is not None:
            board.close()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    _save_model(run, net, recipe, monitor)
    if recipe.model == "mesh-net":  # a resumed run redoes this step if it was killed in it
        try:
            mesh_tune.fit_photo_head(net, recipe, train_set, run.path / "photo_head.npz", log,
                                    progress)
        except KeyboardInterrupt:
            run.interrupt(_figures(monitor.state))
            raise RunInterrupted(resume_hint or run.path, state.get("epoch", start)) from None
    run.finish(_figures(monitor.state))
    s = monitor.state
    if s.get("stopped_early") or s.get("stopped_at_time_limit"):
        why = "early (patience ran out)" if s.get("stopped_early") else "at the time limit"
        log(f"stopped {why} at epoch {s['epoch']}; best validation RMSE "
            f"{s.get('best_val_rmse', float('nan')):.3f} px at epoch {s.get('best_epoch')}")
    return run


def measure_mirror_axis(run: RunFolder, recipe: Recipe, train_set, log: Callable[[str], None],
                        progress, scheme: Scheme | None = None) -> np.ndarray:
    """The labels' mirror axis, measured once with the face mesh and kept in the run folder."""
    if run.mirror_file.is_file():
        return run.mirror_axis()
    from ..mesh import mirror

    axis = mirror.measure_mirror_axis(train_set, recipe.columns, recipe.seed, progress,
                                      scheme=scheme, aligned=recipe.model == "mesh-net")
    run.save_mirror_axis(axis)
    log(f"{recipe.name}: the labels' x mirrors about {np.mean(axis[x_mask(recipe.columns)]):.2f}"
        f" (measured with the face mesh; the pixel-centre convention puts it at {MIRROR_X})")
    return axis


def _save_model(run: RunFolder, net: keras.Model, recipe: Recipe, monitor: RunMonitor) -> None:
    if recipe.patience and monitor.best_weights is not None:
        net.set_weights(monitor.best_weights)
    save_model_atomic(net, run.model_file)


def _figures(state: dict) -> dict:
    return {k: state.get(k) for k in ("epoch", "elapsed", "best_epoch", "best_val_loss",
                                      "best_val_rmse", "stopped_early", "stopped_at_time_limit")}


def _raise_interrupt(signum, frame):
    raise _Interrupted()
