"""Optimisers and their schedules, including Nouri's rising momentum that Keras' SGD cannot do.

Under TensorFlow both optimisers update each variable with one fused kernel (the same arithmetic
as Keras' own update, in one pass over memory instead of six to ten elementwise ops): profiled,
Keras' generic update was 11% of a model3 epoch here. Other backends, and training under a
tf.distribute strategy, use Keras' update unchanged.
"""

from __future__ import annotations

import keras
from keras import ops

from ..stored.recipe import Recipe


def _fused_kernels() -> bool:
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.distribute.has_strategy()


@keras.saving.register_keras_serializable("facekeypoints")
class FusedAdamW(keras.optimizers.AdamW):
    """Keras' AdamW; decoupled weight decay and the Adam step each one kernel under TensorFlow."""

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None or not _fused_kernels():
            return super()._apply_weight_decay(variables)
        import tensorflow as tf

        for variable in variables:
            if self._use_weight_decay(variable):
                rate = ops.cast(self.learning_rate, variable.dtype) * ops.cast(
                    self.weight_decay, variable.dtype)
                # var -= rate * var
                tf.raw_ops.ResourceApplyGradientDescent(var=variable.handle, alpha=rate,
                                                        delta=variable.value)

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not _fused_kernels():
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle,
            v=self._velocities[index].handle, beta1_power=ops.power(beta_1, step),
            beta2_power=ops.power(beta_2, step), lr=ops.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=ops.cast(self.epsilon, dtype),
            grad=ops.cast(gradient, dtype))


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
        if _fused_kernels():
            import tensorflow as tf

            # m = momentum * m - lr * g; var += m (Nesterov: var += momentum * m - lr * g)
            tf.raw_ops.ResourceApplyKerasMomentum(
                var=variable.handle, accum=m.handle, lr=learning_rate, grad=gradient,
                momentum=momentum, use_nesterov=self.nesterov)
            return
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
    return FusedAdamW(learning_rate=schedule, weight_decay=recipe.weight_decay)


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    lr = optimizer.learning_rate
    return float(ops.convert_to_numpy(lr))
