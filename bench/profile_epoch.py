"""Where a `fast` epoch's time goes: augmentation, batch norm and validation, side by side.

    python bench/profile_epoch.py

Trains variants of the `fast` recipe on the same 640 real faces, alternating one epoch of each,
three rounds after a tracing epoch, and times the per-epoch validation; prints medians.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from common import FACES

VARIANTS = {
    "fast": {},
    "fast, flips only": {"rotate": 0.0, "shift": 0.0, "zoom": 0.0, "brightness": 0.0,
                         "contrast": 0.0},
    "fast, no augmentation": {"flip": False, "rotate": 0.0, "shift": 0.0, "zoom": 0.0,
                              "brightness": 0.0, "contrast": 0.0},
    "fast without batch norm": {"batch_norm": False},
}


def main() -> None:
    from facekeypoints.cli import quiet_keras

    quiet_keras()
    from facekeypoints import models, train
    from facekeypoints import recipe as recipe_mod

    train_set, val_set = train.prepare_data(recipe_mod.load("fast"), FACES / "training.csv.gz")
    faces = train_set.subset(np.arange(640))
    trainers = {}
    for label, overrides in VARIANTS.items():
        recipe = recipe_mod.load("fast", overrides)
        net = models.build(recipe, len(recipe.columns))
        trainers[label] = (train.build_trainer(recipe, net, 640), net)
        train.fit_epochs(trainers[label][0], faces, recipe.batch_size, epochs=1)
    times: dict[str, list[float]] = {label: [] for label in VARIANTS}
    for _ in range(3):
        for label, (trainer, _) in trainers.items():
            start = time.perf_counter()
            train.fit_epochs(trainer, faces, 32, epochs=1)
            times[label].append(time.perf_counter() - start)
    for label in VARIANTS:
        print(f"{label:<26} {statistics.median(times[label]):6.2f} s per 640 faces")
    net = trainers["fast"][1]
    runs = []
    for _ in range(6):
        start = time.perf_counter()
        train.predict_scaled(net, val_set.X)
        runs.append(time.perf_counter() - start)
    print(f"{'validation':<26} {statistics.median(runs[1:]):6.3f} s for {len(val_set)} faces")


if __name__ == "__main__":
    main()
