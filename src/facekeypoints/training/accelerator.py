"""Use what the machine has: mixed precision on GPUs, and data parallelism over several devices.

XLA needs nothing here: Keras' default `jit_compile="auto"` compiles with XLA on a GPU and not
on a CPU, where it was measured slower.
"""

from __future__ import annotations

import contextlib

import keras

from ..stored.nets import replicas
from ..stored.recipe import Recipe

__all__ = ["replicas", "training_scope"]


def gpu_count() -> int:
    try:
        return len(keras.distribution.list_devices("gpu"))
    except (RuntimeError, ValueError):
        return 0


def training_scope(recipe: Recipe,
                   devices: list[str] | None = None) -> contextlib.AbstractContextManager:
    """Set precision for this run and return the scope to build and train the model in.

    Several GPUs are used data-parallel on their own; `devices` names them explicitly (the tests
    pass two logical CPU devices, the only way to run the data-parallel path without GPUs)."""
    gpus = gpu_count()
    mixed = recipe.precision == "mixed" or (recipe.precision == "auto" and gpus > 0)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    if devices is None and gpus > 1:
        devices = [f"/gpu:{i}" for i in range(gpus)]
    if devices and len(devices) > 1 and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(devices).scope()
    if devices and len(devices) > 1 and keras.backend.backend() == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices))
    return contextlib.nullcontext()
