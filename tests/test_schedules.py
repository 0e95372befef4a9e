"""Nouri's learning-rate and momentum schedules, and the SGD that can follow them."""

import keras
import numpy as np
import pytest

from facekeypoints.training import optim


def test_linear_schedule_runs_from_start_to_end_over_the_planned_epochs():
    assert optim.linear(0.03, 0.001, 0, 100) == pytest.approx(0.03)
    assert optim.linear(0.03, 0.001, 99, 100) == pytest.approx(0.001)
    assert optim.linear(0.9, 0.999, 50, 101) == pytest.approx(0.9495)
    assert optim.linear(0.03, 0.001, 150, 100) == pytest.approx(0.001)  # extended runs hold
    assert optim.linear(0.01, None, 7, 100) == 0.01


def test_scheduled_sgd_uses_the_momentum_it_was_set_to():
    def run(momentum_after_first_step):
        w = keras.Variable(np.array([1.0], np.float32))
        opt = optim.ScheduledSGD(learning_rate=0.1, momentum=0.9, nesterov=False)
        grad = [np.array([1.0], np.float32)]
        opt.apply_gradients(zip(grad, [w], strict=True))
        opt.set_momentum(momentum_after_first_step)
        opt.apply_gradients(zip(grad, [w], strict=True))
        return float(w.numpy()[0])

    # Step 1: m = -0.1, w = 0.9. Step 2: m = -0.1 + mu * -0.1, w = 0.9 + m.
    assert run(0.9) == pytest.approx(0.9 - 0.1 - 0.09)
    assert run(0.0) == pytest.approx(0.9 - 0.1)
