"""The run folder: what every kind of run (a net, a group of specialists, the mesh's heads)
leaves on disk, and the one owner of its lifecycle.

    RunFolder.claim(path)          a new run: the folder must be empty or not exist yet
    RunFolder.claim(path, resume)  an old one: it must hold a run, and not a running one
    run.begin(...)                 recipe.toml and data.json written; status "running"
    run.interrupt(...) / finish()  status "interrupted" or "finished", with the summary

`recipe.toml` (resolved), `data.json` (what was trained on and which people were held out),
`history.csv` (one row per epoch), `checkpoint/` (weights, optimiser and early-stopping state;
swapped in atomically), `summary.json` (the status and, once the run stops, its figures),
`model.keras`, `scheme.json` (the labels' landmark scheme), `mirror_axis.json` where the recipe
measured it, and `tensorboard/` when asked for. A group of specialists is a folder with
`specialists.json` and one run folder each.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import schemes
from ..data import Faces, prepare_data
from ..errors import UserError
from ..files import atomic_write_text
from ..keypoints import MIRROR_X, unscale
from ..schemes import Scheme
from . import recipe as recipe_mod
from .recipe import Recipe

HISTORY_FIELDS = ["epoch", "train_loss", "val_loss", "val_rmse", "learning_rate", "momentum",
                  "seconds", "elapsed"]
MANIFEST = "specialists.json"
STATUSES = ("new", "running", "interrupted", "finished")


class RunInterrupted(UserError):
    """Ctrl-C or SIGTERM stopped a run after saving it; `resume` is the folder to continue,
    which for a specialist is its group's."""

    def __init__(self, resume: Path, epoch: int | None = None):
        at = f" at epoch {epoch}" if epoch is not None else ""
        super().__init__(f"interrupted{at}; continue with: "
                         f"facekeypoints train --out {resume} --resume")
        self.epoch, self.resume = epoch, resume


@dataclass
class RunFolder:
    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    # ------------------------------------------------------------------------- files

    @property
    def recipe(self) -> Path:
        return self.path / "recipe.toml"

    @property
    def data(self) -> Path:
        return self.path / "data.json"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def model(self) -> Path:
        return self.path / "model.keras"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint"

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.json"

    @property
    def mirror_file(self) -> Path:
        return self.path / "mirror_axis.json"

    @property
    def scheme_file(self) -> Path:
        return self.path / "scheme.json"

    @property
    def is_group(self) -> bool:
        return (self.path / MANIFEST).is_file()

    def members(self) -> list[RunFolder]:
        """The specialists of a group (in group order), or [self] for one run."""
        if not self.is_group:
            return [self]
        groups = json.loads((self.path / MANIFEST).read_text())["groups"]
        return [RunFolder(self.path / g) for g in groups]

    # ------------------------------------------------------------------------- lifecycle

    @classmethod
    def claim(cls, path: str | Path, resume: bool = False) -> RunFolder:
        """The folder a run may write to: for a new run an empty or new one; with `resume`,
        one that holds a run which is not running now. Nothing is written yet."""
        run = cls(Path(path))
        if resume:
            if not run.recipe.is_file():
                raise UserError(f"--out {run.path}: no run to resume there (no recipe.toml)")
            busy = [m for m in run.members() if m.status() == "running"]
            if busy:
                owner = busy[0].summary()
                raise UserError(f"--out {run.path}: still running (process {owner.get('pid')} "
                                f"on {owner.get('host')}); stop it before resuming")
        elif run.path.exists() and any(run.path.iterdir()):
            raise UserError(f"--out {run.path}: folder exists and is not empty; pass --resume "
                            "to continue that run or choose another folder")
        return run

    @classmethod
    def for_training(cls, path: str | Path, recipe: Recipe | None, data_path: str | Path | None,
                     resume: bool) -> tuple[RunFolder, Recipe, str | Path]:
        """`claim`, and what to train: the recipe and data file given for a new run, or for a
        resumed one its own (its data file unless another is given)."""
        run = cls.claim(path, resume)
        if resume:
            return run, run.load_recipe(), data_path or run.data_path()
        if recipe is None or data_path is None:
            raise UserError("train needs a recipe and a data file, or a run folder to resume")
        return run, recipe, data_path

    def begin(self, recipe: Recipe, data_record: dict | None = None,
              scheme: Scheme | None = None) -> None:
        """Write the resolved recipe (and, for a new run, its data record and scheme) and mark
        the run running in this process."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.recipe, recipe.to_toml())
        if data_record is not None:
            atomic_write_text(self.data, json.dumps(data_record, indent=1))
        if scheme is not None and not self.scheme_file.is_file():
            atomic_write_text(self.scheme_file, json.dumps(schemes.record(scheme), indent=1))
        self._write_summary({"status": "running", "pid": os.getpid(),
                             "host": socket.gethostname(), "started": time.time()})

    def interrupt(self, figures: dict) -> None:
        self._write_summary({"status": "interrupted", **figures})

    def finish(self, figures: dict) -> None:
        self._write_summary({"status": "finished", **figures})

    def summary(self) -> dict:
        try:
            return json.loads(self.summary_file.read_text())
        except FileNotFoundError:
            return {}

    def status(self) -> str:
        """new (nothing yet), running (in a live process), interrupted (stopped, killed or
        never started for a group's member) or finished. A group is finished when every
        member is, running while one is."""
        if self.is_group:
            member_status = [m.status() for m in self.members()]
            for status in ("running", "interrupted", "new"):
                if status in member_status:
                    return "interrupted" if status == "new" else status
            return "finished"
        summary = self.summary()
        status = summary.get("status")
        if status == "running":
            return "running" if _alive(summary) else "interrupted"  # killed: no chance to say
        if status in ("interrupted", "finished"):
            return status
        if not self.recipe.is_file():
            return "new"
        if not summary:
            return "interrupted"
        # written before runs recorded their status: finished if it stopped by itself
        if summary.get("stopped_early") or summary.get("stopped_at_time_limit"):
            return "finished"
        recipe = self.load_recipe()
        done = recipe.model == "mesh" or summary.get("epoch", 0) >= recipe.epochs
        return "finished" if done else "interrupted"

    def _write_summary(self, summary: dict) -> None:
        atomic_write_text(self.summary_file, json.dumps(summary, indent=1))

    # ------------------------------------------------------------------------- records

    def load_recipe(self) -> Recipe:
        if not self.recipe.is_file():
            raise UserError(f"{self.path}: not a run folder (no recipe.toml)")
        return recipe_mod.load(str(self.recipe))

    def data_record(self) -> dict:
        """data.json: the data file, the columns, and the people held out."""
        if not self.data.is_file():
            raise UserError(f"{self.path}: not a run folder (no data.json)")
        return json.loads(self.data.read_text())

    def data_path(self) -> str:
        return self.data_record()["data"]

    def held_out(self) -> tuple | None:
        """Who the run held out, comparable between runs: its people, or for a split by row
        (no people named) the file, split seed and fraction that chose the rows; None for a
        folder that is not a run."""
        if not self.data.is_file() or not self.recipe.is_file():
            return None
        record = self.data_record()
        if record.get("validation_persons") is not None:
            return ("person", tuple(record["validation_persons"]))
        recipe = self.load_recipe()
        seed = recipe.seed if recipe.split_seed is None else recipe.split_seed
        return ("row", record["data"], seed, recipe.validation,
                record.get("train_rows"), record.get("validation_rows"))

    def own_scheme(self) -> Scheme | None:
        """The scheme to read the run's data file with: its recorded one (a user's own cannot
        be told from the file's header), or None to let the header say."""
        return self.scheme() if self.scheme_file.is_file() else None

    def scheme(self, columns: list[str] | None = None) -> Scheme:
        """The labels' scheme: scheme.json, or for a run from before schemes the built-in one
        its columns belong to (Kaggle's)."""
        if self.scheme_file.is_file():
            return schemes.load(json.loads(self.scheme_file.read_text()))
        return schemes.for_columns(columns or self.load_recipe().columns, str(self.path))

    def mirror_axis(self) -> float | np.ndarray:
        """Where this run's labels mirror (recipe `mirror`): measured, or the pixel-centre axis."""
        if not self.mirror_file.is_file():
            return MIRROR_X
        return np.array(json.loads(self.mirror_file.read_text()))

    def save_mirror_axis(self, axis: np.ndarray) -> None:
        atomic_write_text(self.mirror_file, json.dumps([round(float(a), 4) for a in axis]))

    def read_history(self) -> list[dict[str, float]]:
        if not self.history.is_file():
            return []
        with open(self.history, newline="") as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]

    def append_history(self, row: dict) -> None:
        """One epoch's row, appended (a row is small; a kill loses at most the last one)."""
        new = not self.history.exists()
        with open(self.history, "a", newline="") as f:
            writer = csv.DictWriter(f, HISTORY_FIELDS, lineterminator="\n")
            if new:
                writer.writeheader()
            writer.writerow({k: _cell(k, row[k]) for k in HISTORY_FIELDS})

    def write_history(self, rows: list[dict]) -> None:
        """The whole history, atomically."""
        lines = [",".join(HISTORY_FIELDS)]
        lines += [",".join(_cell(k, r[k]) for k in HISTORY_FIELDS) for r in rows]
        atomic_write_text(self.history, "\n".join(lines) + "\n")

    def truncate_history(self, epoch: int) -> None:
        """Drop rows written after the checkpoint we resume from: one continuous curve."""
        self.write_history([r for r in self.read_history() if r["epoch"] <= epoch])

    def trained_net(self, recipe: Recipe | None = None):
        """The trained Keras net: model.keras, or for a killed run the checkpoint's best or
        last weights."""
        import keras

        from . import models

        if self.model.is_file():
            return keras.models.load_model(self.model, compile=False)
        state = self.state()
        if state is None:
            raise UserError(f"{self.path}: the run has no model.keras and no checkpoint yet")
        recipe = recipe or self.load_recipe()
        net = models.build(recipe, len(recipe.columns))
        folder = Path(state["folder"])
        best = folder / "best.npz"
        net.set_weights(load_arrays(best if best.is_file() else folder / "weights.npz"))
        return net

    # ------------------------------------------------------------------------- checkpoints

    def state(self) -> dict | None:
        """The latest whole checkpoint's state; safe to call while a run is swapping folders."""
        for folder in (self.checkpoint, self.path / "checkpoint.old"):
            try:
                return json.loads((folder / "state.json").read_text()) | {"folder": str(folder)}
            except FileNotFoundError:
                continue
        return None

    def save_checkpoint(self, weights: list[np.ndarray], optimizer: list[np.ndarray],
                        state: dict, best_weights: list[np.ndarray] | None,
                        random: list[np.ndarray] | None = None) -> None:
        """Write the new checkpoint beside the old one, then swap folders: never half one.
        `random`: the train step's random generators, so a resume draws what the run would."""
        tmp, old = self.path / "checkpoint.tmp", self.path / "checkpoint.old"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_arrays(tmp / "weights.npz", weights)
        save_arrays(tmp / "optimizer.npz", optimizer)
        if best_weights is not None:
            save_arrays(tmp / "best.npz", best_weights)
        if random:
            save_arrays(tmp / "random.npz", random)
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        shutil.rmtree(old, ignore_errors=True)
        if self.checkpoint.exists():
            self.checkpoint.rename(old)
        tmp.rename(self.checkpoint)
        shutil.rmtree(old, ignore_errors=True)


def training_data(run: RunFolder, recipe: Recipe, data_path: str | Path,
                  log=print) -> tuple[Recipe, Scheme, Faces, Faces]:
    """What a run trains on: the held-out split, the recipe with its columns resolved (none
    given: every column of the data's scheme), and the scheme (a resumed run's own), with a
    mean shape from the labels where the scheme brings none (the photo pipeline re-frames faces
    on it)."""
    scheme = run.scheme(recipe.columns) if run.scheme_file.is_file() else (recipe.scheme or None)
    train_set, val_set = prepare_data(recipe, data_path, scheme)
    scheme = train_set.scheme or schemes.for_columns(train_set.columns)
    if not recipe.columns:
        recipe = recipe.replace(columns=list(train_set.columns))
    if recipe.flip or recipe.tta:
        try:
            scheme.flip_permutation(recipe.columns)
        except UserError as e:
            raise UserError(f"recipe {recipe.name}: flip or tta needs both sides of each "
                            f"keypoint: {e}") from None
    if scheme.mean_shape is None:
        full = train_set.select(train_set.columns, dropna=False)
        mean = np.nanmean(unscale(full.y), axis=0).reshape(-1, 2)
        names = [c[:-2] for c in full.columns[::2]]
        if not all(p in names for p in scheme.points) or np.isnan(mean).any():
            raise UserError(f"{data_path}: every point of scheme {scheme.name} needs a label on "
                            "some face (for its mean shape)")
        scheme = scheme.with_mean_shape(mean[[names.index(p) for p in scheme.points]])
    return recipe, scheme, train_set, val_set


def data_record(data_path: str | Path, columns: list[str], train_set, val_set) -> dict:
    """What data.json says: the data file, the columns, and the people held out."""
    return {
        "data": str(Path(data_path).resolve()),
        "columns": columns,
        "train_rows": len(train_set),
        "validation_rows": len(val_set),
        "split": "person" if train_set.persons is not None else "row",
        "validation_persons": sorted(set(val_set.persons)) if val_set.persons is not None
        else None,
    }


def _cell(key: str, value) -> str:
    return str(int(value)) if key == "epoch" else f"{value:.6g}"


def _alive(summary: dict) -> bool:
    """Whether the process that marked a run running still runs. One on another machine (or
    in a container since replaced) cannot be asked: it counts as stopped, so that a folder
    moved after a kill can be resumed."""
    if summary.get("host") != socket.gethostname():
        return False
    pid = summary.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return False  # this process is not in the middle of that run: it stopped, badly
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_a_zombie(pid)


def _not_a_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def save_arrays(path: Path, arrays: list[np.ndarray]) -> None:
    np.savez(path, *arrays)


def load_arrays(path: Path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


def free_folder(base: Path) -> Path:
    """`base`, or the first of base-2, base-3, ... that does not exist yet."""
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out
