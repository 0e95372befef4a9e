"""Fine-tuning the face mesh rebuilt in Keras (`mesh.net`, the net itself): its head
started from the ridge fit, the body held still then freed, and the photo head fitted after."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from ..errors import UserError
from ..stored.recipe import Recipe
from ..training.freezing import BodySchedule, GradientScale
from .net import mesh_net, rebuild

__all__ = ["body_schedule", "fit_photo_head", "mesh_net", "rebuild", "start_head"]


def start_head(net: keras.Model, recipe: Recipe, faces, mirror_axis,
               log: Callable[[str], None], progress) -> None:
    """The head starts where the `mesh` recipe ends: a ridge fit of the frozen mesh's points
    (ONNX Runtime, which is quicker here) on every label, with the mirror images where the
    recipe flips. Standardisation and weights go into the head's two layers."""
    from .backbone import FaceMesh
    from .heads import MeshHead
    from .mirror import mirrored_labels, points_and_mirrors

    log(f"{recipe.name}: the head starts from a ridge fit of the frozen mesh's points "
        f"(ridge {recipe.ridge:g}) on {len(faces)} faces"
        + (" and their mirror images" if recipe.flip else ""))
    mesh = FaceMesh()
    if recipe.flip:
        points, mirrored = points_and_mirrors(mesh, faces.X, progress)
        points = np.concatenate([points, mirrored])
        y = np.concatenate([faces.y, mirrored_labels(faces.y, recipe.columns, mirror_axis,
                                                     faces.scheme)])
    else:
        points, y = mesh(faces.X, progress)[0], faces.y
    ridge = MeshHead.fit(points, y, recipe.ridge)
    head = net.get_layer("head")
    head.get_layer("standardise").set_weights([ridge.mean.astype(np.float32),
                                               ridge.scale.astype(np.float32)])
    head.get_layer("keypoints").set_weights([ridge.weights.astype(np.float32),
                                             ridge.bias.astype(np.float32)])


def body_schedule(net: keras.Model, recipe: Recipe):
    """A `prepare` hook for the loop: the same layers with a gradient gate between body and
    head, opened after `freeze = "until:N"` epochs (the tutorial's model9 schedule); or with
    `freeze = "head"`, the head kept as the ridge fit made it while the body learns (Adam moves
    every weight of a 936-input head by about the learning rate a step, so even small rates
    shake a head that starts at its optimum: measured, 1.33 -> 2.30 px in one epoch at 3e-4)."""
    if recipe.body_learning_rate is not None and recipe.optimizer != "sgd":
        raise UserError("body_learning_rate scales the body's gradients, which is a learning "
                        "rate only under SGD; use optimizer = \"sgd\"")
    net.get_layer("head").trainable = recipe.freeze != "head"
    gate = keras.Variable(1.0, trainable=False, name="body_gradient_scale")
    image = keras.Input(net.input_shape[1:])
    keypoints = net.get_layer("head")(GradientScale(gate)(net.get_layer("body")(image)))
    return keras.Model(image, keypoints, name="mesh_net_gated"), [BodySchedule(recipe, None,
                                                                               gate)]


def fit_photo_head(net: keras.Model, recipe: Recipe, faces, path, log: Callable[[str], None],
                   progress) -> None:
    """The photo head a `mesh` run fits (`photo_head.fit_photo_head`), on the tuned body's
    points. The tuned net itself learned faces framed as Kaggle's are: 7.2% NME on
    photos/youtube, against 5.6% with this head (docs/mesh.md). Its framing is the detector's
    (LOOSE_FRAMING): this recipe's rotate, shift and zoom are the training's augmentation."""
    from .photo_head import fit_photo_head as fit

    body = net.get_layer("body")

    def points_of(images: np.ndarray, what: str) -> np.ndarray:
        parts = [body.predict_on_batch(images[i:i + 256]) for i in range(0, len(images), 256)]
        return np.concatenate(parts).reshape(len(images), -1, 2).astype(np.float64)

    fit(points_of, faces, recipe.columns, recipe.ridge, recipe.seed, faces.scheme,
        flip=recipe.flip, measured=recipe.mirror == "measured", log=log,
        name=recipe.name).save(path)
