"""The masked loss: a missing label contributes nothing to the loss or to its gradient."""

import numpy as np
import tensorflow as tf

from facekeypoints.training.losses import masked_mse


def test_masked_mse_is_plain_mse_over_present_labels():
    y_true = np.array([[0.1, np.nan, 0.3], [np.nan, np.nan, -0.2]], np.float32)
    y_pred = np.array([[0.0, 5.0, 0.1], [9.0, -9.0, 0.0]], np.float32)
    expected = np.mean([(0.1 - 0.0) ** 2, (0.3 - 0.1) ** 2, (-0.2 - 0.0) ** 2])
    assert np.isclose(float(masked_mse(y_true, y_pred)), expected, rtol=1e-6)


def test_missing_labels_give_zero_gradient_and_no_nan():
    y_true = tf.constant([[0.1, np.nan], [np.nan, 0.2]], tf.float32)
    y_pred = tf.Variable([[0.5, 0.7], [0.9, -0.1]], dtype=tf.float32)
    with tf.GradientTape() as tape:
        loss = masked_mse(y_true, y_pred)
    grad = tape.gradient(loss, y_pred).numpy()
    assert np.isfinite(grad).all()
    assert grad[0, 1] == 0 and grad[1, 0] == 0
    assert grad[0, 0] != 0 and grad[1, 1] != 0


def test_all_missing_gives_zero_loss_not_nan():
    assert float(masked_mse(np.full((2, 2), np.nan, np.float32), np.ones((2, 2), np.float32))) == 0
