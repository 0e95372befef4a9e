"""Where an epoch's time goes: by variant of `fast`, and by TensorFlow op for any recipe.

    python bench/profile_epoch.py                      # variants of fast, side by side
    python bench/profile_epoch.py --ops model3 fast    # op-level profile of training epochs

Variants: trains variants of the `fast` recipe on the same 640 real faces, alternating one epoch of
each, three rounds after a tracing epoch, and times the per-epoch validation; prints medians.
Ops: records two training epochs with TensorFlow's profiler (TensorFlow backend only) and sums the
time of each kind of op over the compute threads; shares are of that summed op time. Writes
bench/results/profile_ops.csv.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import FACES, RESULTS, write_table

from facekeypoints import data

# First match wins: op types as TensorFlow's CPU (oneDNN) kernels name them, or scope words.
OP_KINDS = [
    ("conv: weight gradients", ("Conv2DBackpropFilter",)),
    ("conv: input gradients", ("Conv2DBackpropInput",)),
    ("conv: forward", ("Conv2D",)),
    ("dense: matmul", ("MatMul",)),
    ("max pool, forward and gradient", ("MaxPool",)),
    ("optimiser update", ("ResourceApply", "AssignVariable", "AssignAdd", "AssignSub")),
    ("augmentation", ("/augment",)),
    ("dropout and random numbers", ("Random", "dropout")),
    ("batch norm", ("batch_normalization", "FusedBatchNorm")),
]

VARIANTS = {
    "fast": {},
    "fast, flips only": {"rotate": 0.0, "shift": 0.0, "zoom": 0.0, "brightness": 0.0,
                         "contrast": 0.0},
    "fast, no augmentation": {"flip": False, "rotate": 0.0, "shift": 0.0, "zoom": 0.0,
                              "brightness": 0.0, "contrast": 0.0},
    "fast without batch norm": {"batch_norm": False},
}


def variants() -> None:
    from facekeypoints.training import loop, models
    from facekeypoints.training import recipe as recipe_mod
    from facekeypoints.training.models import predict_scaled

    train_set, val_set = data.prepare_data(recipe_mod.load("fast"), FACES / "training.csv.gz")
    faces = train_set.subset(np.arange(640))
    trainers = {}
    for label, overrides in VARIANTS.items():
        recipe = recipe_mod.load("fast", overrides)
        net = models.build(recipe, len(recipe.columns))
        trainers[label] = (loop.build_trainer(recipe, net, 640), net)
        loop.fit_epochs(trainers[label][0], faces, recipe.batch_size, epochs=1)
    times: dict[str, list[float]] = {label: [] for label in VARIANTS}
    for _ in range(3):
        for label, (trainer, _) in trainers.items():
            start = time.perf_counter()
            loop.fit_epochs(trainer, faces, 32, epochs=1)
            times[label].append(time.perf_counter() - start)
    for label in VARIANTS:
        print(f"{label:<26} {statistics.median(times[label]):6.2f} s per 640 faces")
    net = trainers["fast"][1]
    runs = []
    for _ in range(6):
        start = time.perf_counter()
        predict_scaled(net, val_set.X)
        runs.append(time.perf_counter() - start)
    print(f"{'validation':<26} {statistics.median(runs[1:]):6.3f} s for {len(val_set)} faces")


def op_kind(event: str) -> str:
    for kind, keys in OP_KINDS:
        if any(key in event for key in keys):
            return kind
    return "other elementwise (relu grads, loss, ...)"


def profile_ops(name: str) -> list[dict]:
    import keras
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from facekeypoints.training import loop, models
    from facekeypoints.training import recipe as recipe_mod

    if keras.backend.backend() != "tensorflow":
        raise SystemExit("--ops reads TensorFlow's profiler: run with KERAS_BACKEND=tensorflow")
    recipe = recipe_mod.load(name)
    train_set, _ = data.prepare_data(recipe, FACES / "training.csv.gz")
    net = models.build(recipe, len(recipe.columns))
    trainer = loop.build_trainer(recipe, net, len(train_set))
    loop.fit_epochs(trainer, train_set, recipe.batch_size, epochs=1)  # trace first
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        loop.fit_epochs(trainer, train_set, recipe.batch_size, epochs=2)
        wall = (time.perf_counter() - start) / 2
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    plane = next(p for p in space.planes if p.name == "/host:CPU")
    names = {k: v.name for k, v in plane.event_metadata.items()}
    ms: collections.Counter[str] = collections.Counter()
    for line in plane.lines:
        if not line.name.startswith("tf_Compute"):
            continue
        for event in line.events:
            label = names[event.metadata_id]
            if ":" in label and "::" not in label:  # an op ("scope/name:Type"), not a frame
                ms[op_kind(label)] += event.duration_ps / 1e9 / 2
    total = sum(ms.values())
    print(f"{name}: {len(train_set)} faces, batch {recipe.batch_size}, {wall:.2f} s per epoch; "
          f"op time summed over compute threads {total / 1000:.2f} s per epoch")
    return [{"recipe": name, "s_per_epoch": round(wall, 2), "kind": kind,
             "ms_per_epoch": round(t), "share_pct": round(100 * t / total, 1)}
            for kind, t in ms.most_common()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", nargs="+", metavar="RECIPE", help="op-level profile instead")
    parser.add_argument("--out", default=str(RESULTS / "profile_ops.csv"), help="for --ops")
    args = parser.parse_args()
    from facekeypoints.quiet_import import quiet_keras

    quiet_keras()
    if args.ops:
        write_table([row for name in args.ops for row in profile_ops(name)], args.out)
    else:
        variants()


if __name__ == "__main__":
    main()
