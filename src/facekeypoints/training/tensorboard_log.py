"""TensorBoard logs of a run, the Keras user's habit, beside our own history.csv and plots.

`RUN/tensorboard/train` and `RUN/tensorboard/validation` hold, per epoch, the losses (`epoch_loss`
in both, so the curves overlay as Keras' own callback draws them), the validation RMSE in pixels,
the learning rate and momentum, and every so often a strip of validation faces with the predicted
keypoints (red) over the labels (green). Open with `tensorboard --logdir RUN`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..data import Faces
from ..keypoints import unscale

FACES_SHOWN = 8
ZOOM = 2


def faces_picture(X: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Faces side by side, twice their size, RGB uint8 (H, W, 3), keypoints in pixels."""
    tiles = []
    for face, p, t in zip(X, pred, truth, strict=True):
        grey = cv2.resize((face[..., 0] * 255).astype(np.uint8), None, fx=ZOOM, fy=ZOOM,
                          interpolation=cv2.INTER_NEAREST)
        tile = np.repeat(grey[..., None], 3, axis=2)
        for points, colour in ((t, (0, 255, 0)), (p, (255, 0, 0))):
            for x, y in points.reshape(-1, 2):
                if np.isfinite(x) and np.isfinite(y):
                    centre = (round((x + 0.5) * ZOOM - 0.5), round((y + 0.5) * ZOOM - 0.5))
                    cv2.circle(tile, centre, 2, colour, -1, cv2.LINE_AA)
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


class TensorBoardLog:
    """Writes what RunMonitor computed each epoch; no second pass over the validation faces."""

    def __init__(self, folder: Path, val: Faces, columns: list[str], epochs: int):
        import tensorflow as tf

        self.tf = tf
        self.folder = Path(folder)
        self.train = tf.summary.create_file_writer(str(self.folder / "train"))
        self.validation = tf.summary.create_file_writer(str(self.folder / "validation"))
        self.pick = np.linspace(0, len(val) - 1, min(FACES_SHOWN, len(val))).astype(int) \
            if len(val) else np.array([], dtype=int)
        self.val, self.columns = val, columns
        self.image_every = max(1, epochs // 10)  # about ten pictures over a run

    def write(self, epoch: int, row: dict, pred: np.ndarray) -> None:
        tf = self.tf
        with self.train.as_default(step=epoch):
            tf.summary.scalar("epoch_loss", row["train_loss"])
            tf.summary.scalar("learning_rate", row["learning_rate"])
            tf.summary.scalar("momentum", row["momentum"])
            tf.summary.scalar("seconds_per_epoch", row["seconds"])
        with self.validation.as_default(step=epoch):
            tf.summary.scalar("epoch_loss", row["val_loss"])
            tf.summary.scalar("rmse_px", row["val_rmse"])
            if len(self.pick) and (epoch == 1 or epoch % self.image_every == 0):
                picture = faces_picture(self.val.X[self.pick], unscale(pred[self.pick]),
                                        unscale(self.val.y[self.pick]))
                tf.summary.image("faces (red: predicted, green: labelled)", picture[None],
                                 max_outputs=1)
        self.train.flush()
        self.validation.flush()

    def close(self) -> None:
        self.train.close()
        self.validation.close()
