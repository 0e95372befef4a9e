"""Gates on the gradient that hold part of a net still while the rest learns: transfer
learning's schedules (specialists started from a pretrained net, the tuned face mesh)."""

from __future__ import annotations

import keras
from keras import ops

from ..stored.recipe import Recipe


class GradientScale(keras.layers.Layer):
    """Identity forward; multiplies the gradient flowing back by a variable (0 freezes what is
    below, 0.1 gives it a tenth of the learning rate under SGD)."""

    def __init__(self, scale: keras.Variable, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        s = ops.cast(self.scale, x.dtype)
        return x * s + ops.stop_gradient(x) * (1.0 - s)


class BodySchedule(keras.callbacks.Callback):
    """Sets the gradient scales each epoch: frozen, then (after N epochs) the body's own rate."""

    def __init__(self, recipe: Recipe, conv_scale, body_scale):
        super().__init__()
        self.recipe, self.conv_scale, self.body_scale = recipe, conv_scale, body_scale
        self.body_rate = (recipe.body_learning_rate / recipe.learning_rate
                          if recipe.body_learning_rate is not None else 1.0)

    def on_epoch_begin(self, epoch, logs=None):
        freeze = self.recipe.freeze
        frozen_body = freeze.startswith("until:") and epoch < int(freeze.split(":")[1])
        self.body_scale.assign(0.0 if frozen_body else self.body_rate)
        if self.conv_scale is not None:
            self.conv_scale.assign(0.0 if freeze == "conv" else 1.0)
