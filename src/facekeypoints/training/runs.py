"""What a run trains on (`training_data`); the run folder itself is `stored.runs`, re-exported
here for the training code and the scripts that reach it through `training`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import schemes
from ..data import Faces, prepare_data
from ..errors import UserError
from ..keypoints import unscale
from ..schemes import Scheme
from ..stored.recipe import Recipe
from ..stored.runs import (
    HISTORY_FIELDS,
    MANIFEST,
    RunFolder,
    RunInterrupted,
    data_record,
    free_folder,
    load_arrays,
    save_arrays,
)

__all__ = ["HISTORY_FIELDS", "MANIFEST", "RunFolder", "RunInterrupted", "data_record",
           "free_folder", "load_arrays", "save_arrays", "training_data"]


def training_data(run: RunFolder, recipe: Recipe, data_path: str | Path,
                  log=print) -> tuple[Recipe, Scheme, Faces, Faces]:
    """What a run trains on: the held-out split, the recipe with its columns resolved (none
    given: every column of the data's scheme), and the scheme (a resumed run's own), with a
    mean shape from the labels where the scheme brings none (the photo pipeline re-frames faces
    on it)."""
    scheme = run.scheme(recipe.columns) if run.scheme_file.is_file() else (recipe.scheme or None)
    train_set, val_set = prepare_data(recipe, data_path, scheme)
    missed = (train_set.framing or {}).get("missed_by_detector")
    if missed:
        more = ", ..." if len(missed) > 5 else ""
        log(f"{data_path}: the detector missed {len(missed)} labelled face(s), framed from "
            f"their labels' box instead: {', '.join(missed[:5])}{more}")
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
