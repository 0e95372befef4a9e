"""Optimisers and their schedules, including Nouri's rising momentum that Keras' SGD cannot do."""

from __future__ import annotations

import keras
from keras import ops

from .recipe import Recipe


@keras.saving.register_keras_serializable("facekeypoints")
class ScheduledSGD(keras.optimizers.SGD):
    """SGD whose momentum lives in a variable, so a callback can change it while training."""

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentum_variable = self.add_variable(
            shape=(), initializer=keras.initializers.Constant(self.momentum), name="momentum_value"
        )

    def set_momentum(self, value: float) -> None:
        self.momentum = value
        if self.built:
            self.momentum_variable.assign(value)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        momentum = ops.cast(self.momentum_variable, variable.dtype)
        m = self.momentums[self._get_variable_index(variable)]
        self.assign(m, -gradient * learning_rate + m * momentum)
        if self.nesterov:
            self.assign_add(variable, -gradient * learning_rate + m * momentum)
        else:
            self.assign_add(variable, m)


def linear(start: float, end: float | None, epoch: int, epochs: int) -> float:
    """Nouri's AdjustVariable: a straight line from start to end over the planned epochs."""
    if end is None or epochs <= 1:
        return start
    t = min(epoch, epochs - 1) / (epochs - 1)
    return start + (end - start) * t


def make_optimizer(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    if recipe.optimizer == "sgd":
        return ScheduledSGD(learning_rate=recipe.learning_rate, momentum=recipe.momentum,
                            nesterov=recipe.nesterov)
    total = max(1, recipe.epochs * steps_per_epoch)
    warmup = int(recipe.warmup_epochs * steps_per_epoch)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=recipe.learning_rate / 100 if warmup else recipe.learning_rate,
        decay_steps=max(1, total - warmup),
        alpha=0.0,
        warmup_target=recipe.learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=recipe.weight_decay)


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    lr = optimizer.learning_rate
    return float(ops.convert_to_numpy(lr))
