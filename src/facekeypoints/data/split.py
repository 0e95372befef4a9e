"""Training and validation sets: held-out people first (the same people for every recipe with
the same seed), then the recipe's columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .faces import Faces
from .photos import load_training


def split(faces: Faces, fraction: float, seed: int) -> tuple[Faces, Faces]:
    """Seeded train/validation split, by person when persons are known (no person in both)."""
    if not 0 < fraction < 1:
        return faces, faces.subset(np.array([], dtype=np.int64))
    rng = np.random.default_rng(seed)
    if faces.persons is None:
        order = rng.permutation(len(faces))
        n_val = int(round(len(faces) * fraction))
        return faces.subset(np.sort(order[n_val:])), faces.subset(np.sort(order[:n_val]))
    people = np.unique(faces.persons)
    rng.shuffle(people)
    val_people, count = [], 0
    for p in people:
        if count >= fraction * len(faces):
            break
        val_people.append(p)
        count += int((faces.persons == p).sum())
    is_val = np.isin(faces.persons, val_people)
    return faces.subset(np.flatnonzero(~is_val)), faces.subset(np.flatnonzero(is_val))


def prepare_data(recipe, data_path: str | Path, scheme=None) -> tuple[Faces, Faces]:
    """Hold out people first (the same people for every recipe with this seed), then select
    the recipe's columns (none named: all of the file's).

    Validation always uses the held-out people's complete faces (every selected keypoint
    labelled), so curves of recipes that train on complete rows or on every label compare."""
    faces = load_training(data_path, scheme=scheme)
    columns = recipe.columns or faces.columns
    train_set, val_set = split(faces, recipe.validation,
                               recipe.seed if recipe.split_seed is None else recipe.split_seed)
    train_set = train_set.select(columns, recipe.dropna)
    val_set = val_set.select(columns, dropna=True)
    if len(train_set) < 2:
        raise UserError(f"{data_path}: only {len(train_set)} training rows have all of the "
                        f"recipe's {len(columns)} columns; set dropna = false or pick "
                        "columns")
    return train_set, val_set
