"""Training throughput: our trainer against a plain reference of the tutorial's own Keras code.

    python bench/throughput.py                      # model1 ... model7, 9 timed epochs each

Same backend, data (../shared/data/faces, complete rows, people held out), batch size and net.
"ours" is facekeypoints' trainer (in-graph flips, masked loss, per-epoch validation); the
reference is the tutorial's Keras code on the same net built from Keras' own layers: `model.fit`
on arrays, and for flipping recipes a Python generator that flips half of each batch in NumPy
(the Keras port's way). Epochs of the two alternate in one process; the first epoch of each
(tracing) is dropped. Each trainer's mean epoch (a run's time is the sum of its epochs), median
and fastest epoch are reported. `fit` runs some whole epochs on one core while the other idles
(a model2 epoch then takes 2.6 s instead of 1.4 s); the count of reference epochs slower than
1.2x its fastest shows how often, and decides where its median lands.
A third loop, "net only", runs the same net's SGD steps (with our fused update) on plain NumPy
batches with nothing else (no augmentation, callbacks or input pipeline) plus the validation pass:
the floor for any trainer of that net on these kernels, so reference / net-only bounds the
speed-up a trainer can show.
Also reports the machine's measured matmul peak and the fraction of it each trainer reaches.
Writes bench/results/throughput.csv.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from common import FACES, RESULTS, write_table

from facekeypoints import data


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a large float32 matmul: this machine's practical peak."""
    from keras import ops

    a = ops.convert_to_tensor(np.random.rand(n, n).astype(np.float32))
    ops.convert_to_numpy(ops.matmul(a, a))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ops.convert_to_numpy(ops.matmul(a, a))
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def train_flops_per_sample(net) -> float:
    """Forward multiply-adds of conv and dense layers x 2, times 3 for forward + backward."""
    from keras import layers

    flops = 0.0
    for layer in net.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            flops += 2 * h * w * c_out * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return 3 * flops


class FlipSequence:
    """The tutorial's Keras-port generator: flip half of each batch in NumPy."""

    def __new__(cls, X, y, batch_size, columns):
        import keras

        from facekeypoints.keypoints import mirror_keypoints, x_mask
        from facekeypoints.schemes import builtin

        perm, is_x = builtin("kaggle15").flip_permutation(columns), x_mask(columns)

        class _Seq(keras.utils.PyDataset):
            def __len__(self):
                return int(np.ceil(len(X) / batch_size))

            def __getitem__(self, i):
                xb = X[i * batch_size:(i + 1) * batch_size].copy()
                yb = y[i * batch_size:(i + 1) * batch_size].copy()
                idx = np.random.choice(len(xb), len(xb) // 2, replace=False)
                xb[idx] = xb[idx, :, ::-1, :]
                yb[idx] = mirror_keypoints(yb[idx], perm, is_x)
                return xb, yb

        return _Seq()


def measure(name: str, rounds: int, peak: float) -> dict:
    """Alternate epochs of our trainer and the reference on one recipe; medians per epoch."""
    import keras

    from facekeypoints.keypoints import rmse_pixels
    from facekeypoints.training import loop, models, optim
    from facekeypoints.training import recipe as recipe_mod
    from facekeypoints.training.models import predict_scaled

    recipe = recipe_mod.load(name)
    train_set, val_set = data.prepare_data(recipe, FACES / "training.csv.gz")
    n_out = len(recipe.columns)

    # Ours: the project's trainer and per-epoch validation, minus disk writes.
    net = models.build(recipe, n_out)
    trainer = loop.build_trainer(recipe, net, len(train_set))

    def ours_epoch():
        loop.fit_epochs(trainer, train_set, recipe.batch_size, epochs=1)
        rmse_pixels(val_set.y, predict_scaled(net, val_set.X))

    # Reference: the tutorial's Keras code, on the same net built from Keras' own layers.
    ref = models.with_keras_layers(models.build(recipe, n_out))
    ref.compile(optimizer=keras.optimizers.SGD(recipe.learning_rate, momentum=recipe.momentum,
                                               nesterov=True), loss="mse")
    seq = FlipSequence(train_set.X, train_set.y, recipe.batch_size, recipe.columns)

    def ref_epoch():
        if recipe.flip:
            ref.fit(seq, epochs=1, verbose=0, validation_data=(val_set.X, val_set.y))
        else:
            ref.fit(train_set.X, train_set.y, batch_size=recipe.batch_size, epochs=1,
                    verbose=0, shuffle=True, validation_data=(val_set.X, val_set.y))

    # Floor: the net's own math and nothing else (no augmentation, no callbacks, no input
    # pipeline), plus the validation pass both trainers make. No trainer of this net can beat it.
    bare = models.build(recipe, n_out)
    bare.compile(optimizer=optim.ScheduledSGD(recipe.learning_rate, momentum=recipe.momentum,
                                              nesterov=True), loss="mse")
    X, y, b = train_set.X, np.nan_to_num(train_set.y), recipe.batch_size

    def net_only_epoch():
        order = np.random.permutation(len(X))
        for i in range(0, len(X), b):
            bare.train_on_batch(X[order[i:i + b]], y[order[i:i + b]])
        predict_scaled(bare, val_set.X)

    times = {"ours": [], "reference": [], "net_only": []}
    for round_ in range(rounds + 1):
        for label, step in (("ours", ours_epoch), ("reference", ref_epoch),
                            ("net_only", net_only_epoch)):
            start = time.perf_counter()
            step()
            if round_:  # the first epoch traces and compiles
                times[label].append(time.perf_counter() - start)
    flops = train_flops_per_sample(net)
    row = {"recipe": name, "train_faces": len(train_set), "batch": recipe.batch_size,
           "mflop_per_sample": round(flops / 1e6, 1)}
    for label in ("ours", "reference"):
        sec = statistics.median(times[label])
        row[f"{label}_s_per_epoch"] = round(sec, 3)
        row[f"{label}_mean_s"] = round(statistics.mean(times[label]), 3)
        row[f"{label}_fastest_s"] = round(min(times[label]), 3)
        row[f"{label}_samples_per_s"] = round(len(train_set) / sec, 1)
        row[f"{label}_pct_of_peak"] = round(100 * flops * len(train_set) / sec / peak, 1)
    # how many of the reference's epochs fell in fit's slow mode (one core busy, one idle)
    ref = times["reference"]
    row["reference_slow_epochs"] = f"{sum(t > 1.2 * min(ref) for t in ref)}/{len(ref)}"
    row["net_only_s_per_epoch"] = round(statistics.median(times["net_only"]), 3)
    row["speedup"] = round(row["reference_s_per_epoch"] / row["ours_s_per_epoch"], 2)
    # a run's time is the sum of its epochs: with two modes, the mean is what a user waits for
    row["speedup_mean"] = round(row["reference_mean_s"] / row["ours_mean_s"], 2)
    row["speedup_bound"] = round(row["reference_s_per_epoch"] / row["net_only_s_per_epoch"], 2)
    row["speedup_fastest"] = round(row["reference_fastest_s"] / row["ours_fastest_s"], 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=[f"model{i}" for i in range(1, 8)])
    parser.add_argument("--rounds", type=int, default=9, help="timed epochs of each trainer")
    parser.add_argument("--out", default=str(RESULTS / "throughput.csv"))
    args = parser.parse_args()

    from facekeypoints.quiet_import import quiet_keras

    quiet_keras()
    peak = matmul_peak()
    print(f"matmul peak: {peak / 1e9:.0f} GFLOP/s")
    rows = []
    for name in args.recipes:
        rows.append(measure(name, args.rounds, peak))
        print(rows[-1], flush=True)
    print(f"matmul peak {peak / 1e9:.0f} GFLOP/s")
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
