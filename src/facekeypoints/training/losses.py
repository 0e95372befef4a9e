"""Mean squared error over the labels that are present; a missing (NaN) label counts for nothing."""

from __future__ import annotations

from keras import ops


def masked_mse(y_true, y_pred):
    """Mean of squared errors over present labels only: no value, and no gradient, from NaN."""
    present = ops.logical_not(ops.isnan(y_true))
    # Fill before subtracting: NaN * 0 would still be NaN, in the loss and in its gradient.
    filled = ops.where(present, y_true, ops.zeros_like(y_true))
    weight = ops.cast(present, y_pred.dtype)
    squared = ops.square(ops.cast(filled, y_pred.dtype) - y_pred) * weight
    return ops.sum(squared) / ops.maximum(ops.sum(weight), 1.0)
