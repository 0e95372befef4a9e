"""A `mesh` run: the frozen face mesh's points for every training and held-out face (and
their mirror images), then the heads fitted on every label, in one pass, into a run folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..data import Faces
from ..files import atomic_write
from ..keypoints import MIRROR_X, rmse_pixels, x_mask
from ..stored.recipe import Recipe
from ..training.runs import RunFolder, RunInterrupted, data_record, training_data
from .backbone import FaceMesh
from .heads import MeshHead
from .mirror import mirror_axis, mirrored_labels
from .photo_head import fit_photo_head


def train(recipe: Recipe | None, data_path: str | Path | None, out: str | Path,
          resume: bool = False, log: Callable[[str], None] = print,
          progress: str | bool = "auto") -> RunFolder:
    """Mesh points for every training and held-out face (kept in the run folder, so a resumed
    run does not compute them again), the heads fitted, the run folder written."""
    run, recipe, data_path = RunFolder.for_training(out, recipe, data_path, resume)
    with run.held():
        recipe, scheme, train_set, val_set = training_data(run, recipe, data_path, log)
        run.begin(recipe, None if resume else data_record(data_path, recipe.columns, train_set,
                                                           val_set), scheme)
        try:
            return _fit(run, recipe, scheme, train_set, val_set, log, progress)
        except KeyboardInterrupt:
            run.interrupt({})
            raise RunInterrupted(run.path) from None


def _fit(run: RunFolder, recipe: Recipe, scheme, train_set: Faces, val_set: Faces,
         log: Callable[[str], None], progress: str | bool) -> RunFolder:
    log(f"training {recipe.name}: face mesh on {len(train_set)} faces (and their mirror images)"
        f", head on every label; validating on {len(val_set)}; run folder {run.path}")
    start = time.perf_counter()
    mesh = FaceMesh()
    cache = run.checkpoint / "mesh_points.npz"
    if cache.is_file():
        with np.load(cache) as f:
            points, scores = f["points"], f["scores"]
        log(f"resuming {run.path}: mesh points read from {cache}")
    else:
        faces = [train_set.X, val_set.X]
        if recipe.flip:
            faces.append(np.ascontiguousarray(train_set.X[:, :, ::-1, :]))
        points, scores = mesh(np.concatenate(faces), progress, "face mesh: training and "
                              "validation faces" + (", mirrored too" if recipe.flip else ""))
        run.checkpoint.mkdir(exist_ok=True)
        atomic_write(cache, lambda tmp: np.savez(tmp, points=points, scores=scores),
                     suffix=".npz")
    n, m = len(train_set), len(val_set)
    P, y = points[:n], train_set.y
    axis = np.full(len(recipe.columns), float(MIRROR_X))
    if recipe.flip:  # the mirror images, with their keypoints mirrored and left/right swapped
        mirrored = points[n + m:]
        if recipe.mirror == "measured":
            axis = mirror_axis(MeshHead, P, y, mirrored, recipe.columns, recipe.ridge, scheme)
        P = np.concatenate([P, mirrored])
        y = np.concatenate([y, mirrored_labels(y, recipe.columns, axis, scheme)])
    head = MeshHead.fit(P, y, recipe.ridge, axis)

    def points_of(X: np.ndarray, what: str) -> np.ndarray:
        return mesh(X, progress, f"face mesh: {what}")[0]

    # this recipe's rotate, shift and zoom frame the photo head's copies
    framing = {"rotate": recipe.rotate, "shift": recipe.shift, "zoom": recipe.zoom}
    photo_head = fit_photo_head(points_of, train_set, recipe.columns, recipe.ridge, recipe.seed,
                                scheme, framing=framing, flip=recipe.flip,
                                measured=recipe.mirror == "measured",
                                cache=run.checkpoint / "mesh_points_photo.npz", log=log,
                                name=recipe.name)
    if recipe.flip:
        is_x = x_mask(recipe.columns)
        log(f"{recipe.name}: the labels' x mirrors about {np.mean(axis[is_x]):.2f} for the head, "
            f"{np.mean(photo_head.mirror_axis[is_x]):.2f} for the photo head ({recipe.mirror}; "
            f"the pixel-centre convention puts it at {MIRROR_X})")
    photo_head.save(run.path / "photo_head.npz")
    head.save(run.path / "head.npz")
    train_pred = head(points[:n])
    val_pred = head(points[n:n + m])
    seconds = time.perf_counter() - start
    row = {"epoch": 1,
           "train_loss": float(np.nanmean((train_pred - train_set.y) ** 2)),
           "val_loss": float(np.nanmean((val_pred - val_set.y) ** 2)) if m else float("nan"),
           "val_rmse": rmse_pixels(val_set.y, val_pred) if m else float("nan"),
           "learning_rate": 0.0, "momentum": 0.0, "seconds": seconds, "elapsed": seconds}
    run.write_history([row])
    no_face = int((scores[:n + m] < 0.5).sum())
    run.finish({"epoch": 1, "elapsed": seconds, "best_epoch": 1, "best_val_loss": row["val_loss"],
                "best_val_rmse": row["val_rmse"], "faces_without_mesh_face": no_face,
                "faces": n + m})
    log(f"{recipe.name}: validation RMSE {row['val_rmse']:.3f} px (no flip TTA) in "
        f"{seconds:.0f} s; the mesh found no face in {no_face} of {n + m} faces")
    return run

