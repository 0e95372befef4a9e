"""The run folder: what a training run leaves on disk, and how to read it back.

`recipe.toml` (resolved), `data.json` (what was trained on), `history.csv` (one row per epoch),
`checkpoint/` (weights, optimiser state, early-stopping state; swapped in atomically),
`summary.json` and `model.keras` once training ends or is interrupted, `mirror_axis.json`
where the recipe measured it, and `tensorboard/` when asked for. A group of specialists is a
folder with `specialists.json` and one run folder each.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import recipe as recipe_mod
from .errors import UserError
from .files import atomic_write_text
from .keypoints import MIRROR_X
from .recipe import Recipe

HISTORY_FIELDS = ["epoch", "train_loss", "val_loss", "val_rmse", "learning_rate", "momentum",
                  "seconds", "elapsed"]
MANIFEST = "specialists.json"


@dataclass
class RunFolder:
    path: Path

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
    def mirror_file(self) -> Path:
        return self.path / "mirror_axis.json"

    def mirror_axis(self) -> float | np.ndarray:
        """Where this run's labels mirror (recipe `mirror`): measured, or the pixel-centre axis."""
        if not self.mirror_file.is_file():
            return MIRROR_X
        return np.array(json.loads(self.mirror_file.read_text()))

    def load_recipe(self) -> Recipe:
        if not self.recipe.is_file():
            raise UserError(f"{self.path}: not a run folder (no recipe.toml)")
        return recipe_mod.load(str(self.recipe))

    def read_history(self) -> list[dict[str, float]]:
        if not self.history.is_file():
            return []
        with open(self.history, newline="") as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]

    def state(self) -> dict | None:
        """The latest whole checkpoint's state; safe to call while a run is swapping folders."""
        for folder in (self.checkpoint, self.path / "checkpoint.old"):
            try:
                return json.loads((folder / "state.json").read_text()) | {"folder": str(folder)}
            except FileNotFoundError:
                continue
        return None


def save_arrays(path: Path, arrays: list[np.ndarray]) -> None:
    np.savez(path, *arrays)


def load_arrays(path: Path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


def write_data_info(run: RunFolder, data_path: str | Path, columns: list[str], train_set,
                    val_set) -> None:
    """data.json: what a run trained on and which people it held out."""
    atomic_write_text(run.data, json.dumps({
        "data": str(Path(data_path).resolve()),
        "columns": columns,
        "train_rows": len(train_set),
        "validation_rows": len(val_set),
        "split": "person" if train_set.persons is not None else "row",
        "validation_persons": sorted(set(val_set.persons)) if val_set.persons is not None
        else None,
    }, indent=1))


def save_checkpoint(run: RunFolder, net, optimizer, state: dict,
                    best_weights: list[np.ndarray] | None) -> None:
    """Write the new checkpoint beside the old one, then swap folders: never half a checkpoint."""
    tmp, old = run.path / "checkpoint.tmp", run.path / "checkpoint.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_arrays(tmp / "weights.npz", net.get_weights())
    from keras import ops

    save_arrays(tmp / "optimizer.npz", [ops.convert_to_numpy(v) for v in optimizer.variables])
    if best_weights is not None:
        save_arrays(tmp / "best.npz", best_weights)
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    shutil.rmtree(old, ignore_errors=True)
    if run.checkpoint.exists():
        run.checkpoint.rename(old)
    tmp.rename(run.checkpoint)
    shutil.rmtree(old, ignore_errors=True)


def net_from_run(run: RunFolder, recipe: Recipe | None = None):
    """The trained net: model.keras, or for a killed run the checkpoint's best/last weights."""
    import keras

    from . import models

    if run.model.is_file():
        return keras.models.load_model(run.model, compile=False)
    state = run.state()
    if state is None:
        raise UserError(f"{run.path}: the run has no model.keras and no checkpoint yet")
    recipe = recipe or run.load_recipe()
    net = models.build(recipe, len(recipe.columns))
    folder = Path(state["folder"])
    best = folder / "best.npz"
    net.set_weights(load_arrays(best if best.is_file() else folder / "weights.npz"))
    return net




def truncate_history(run: RunFolder, epoch: int) -> None:
    """Drop history rows written after the checkpoint we resume from: one continuous curve."""
    rows = [r for r in run.read_history() if r["epoch"] <= epoch]
    lines = [",".join(HISTORY_FIELDS)]
    lines += [",".join(str(int(r[k])) if k == "epoch" else f"{r[k]:.6g}" for k in HISTORY_FIELDS)
              for r in rows]
    atomic_write_text(run.history, "\n".join(lines) + "\n")


def is_group(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def group_members(path: str | Path) -> list[Path]:
    """Member run folders of a group run (in group order), or [path] for an ordinary run."""
    path = Path(path)
    if not is_group(path):
        return [path]
    return [path / g for g in json.loads((path / MANIFEST).read_text())["groups"]]


def free_folder(base: Path) -> Path:
    """`base`, or the first of base-2, base-3, ... that does not exist yet."""
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out
