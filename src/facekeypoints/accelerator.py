"""Use what the machine has: mixed precision on GPUs, and data parallelism over several of them.

XLA needs nothing here: Keras' default `jit_compile="auto"` compiles with XLA on a GPU and not
on a CPU, where it was measured slower.
"""

from __future__ import annotations

import contextlib

import keras

from .recipe import Recipe


def gpu_count() -> int:
    try:
        return len(keras.distribution.list_devices("gpu"))
    except (RuntimeError, ValueError):
        return 0


def training_scope(recipe: Recipe) -> contextlib.AbstractContextManager:
    """Set precision for this run and return the scope to build and train the model in."""
    gpus = gpu_count()
    mixed = recipe.precision == "mixed" or (recipe.precision == "auto" and gpus > 0)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    if gpus > 1 and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy().scope()
    if gpus > 1 and keras.backend.backend() == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    return contextlib.nullcontext()
