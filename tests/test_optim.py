"""Our fused optimiser updates must do exactly what Keras' own optimisers do."""

import keras
import numpy as np
import pytest

from facekeypoints.training import optim


def _descend(opt, steps: int = 6) -> list[np.ndarray]:
    """A few updates of two variables (one decayed kernel, one bias) from fixed gradients."""
    rng = np.random.default_rng(0)
    kernel = keras.Variable(rng.normal(size=(7, 5)).astype(np.float32), name="kernel")
    bias = keras.Variable(rng.normal(size=(5,)).astype(np.float32), name="bias")
    for _ in range(steps):
        grads = [rng.normal(size=v.shape).astype(np.float32) for v in (kernel, bias)]
        opt.apply_gradients(zip(grads, [kernel, bias], strict=True))
    return [kernel.numpy(), bias.numpy()]


@pytest.mark.parametrize("nesterov", [False, True])
def test_scheduled_sgd_updates_like_keras_sgd(nesterov):
    ours = _descend(optim.ScheduledSGD(learning_rate=0.05, momentum=0.9, nesterov=nesterov))
    keras_ = _descend(keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=nesterov))
    for a, b in zip(ours, keras_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fused_adamw_updates_like_keras_adamw_weight_decay_included():
    schedule = keras.optimizers.schedules.CosineDecay(0.01, decay_steps=6, warmup_target=0.02,
                                                      warmup_steps=2)
    ours = _descend(optim.FusedAdamW(learning_rate=schedule, weight_decay=0.1))
    keras_ = _descend(keras.optimizers.AdamW(learning_rate=schedule, weight_decay=0.1))
    start = _descend(optim.FusedAdamW(learning_rate=0.0, weight_decay=0.1))
    assert not np.allclose(ours[0], start[0])  # the updates did move the weights
    for a, b in zip(ours, keras_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_fused_kernels_are_used_under_tensorflow():
    assert optim._fused_kernels() is (keras.backend.backend() == "tensorflow")
