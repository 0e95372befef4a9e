"""Specialists: one net per keypoint group, each trained on every row where its own keypoints
are present, optionally started from a pretrained full net, saved and loaded as one predictor.

A group run folder holds `specialists.json` and one ordinary run folder per group.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import keras
from keras import layers, ops

from . import runs, training
from .errors import UserError
from .files import atomic_write_text
from .keypoints import columns_of
from .predict import Predictor
from .recipe import Recipe


class GradientScale(layers.Layer):
    """Identity forward; multiplies the gradient flowing back by a variable (0 freezes what is
    below, 0.1 gives it a tenth of the learning rate under SGD)."""

    def __init__(self, scale: keras.Variable, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        s = ops.cast(self.scale, x.dtype)
        return x * s + ops.stop_gradient(x) * (1.0 - s)


def with_gradient_scales(net: keras.Model, conv_scale, body_scale) -> keras.Model:
    """The same layers (shared weights), with gradient scales after the conv part (at Flatten)
    and before the output layer. `net` must be a plain chain, as every net in models.py is."""
    inputs = keras.Input(net.input_shape[1:])
    x = inputs
    for layer in net.layers[1:]:
        if layer is net.layers[-1]:
            x = GradientScale(body_scale)(x)
        x = layer(x)
        if isinstance(layer, layers.Flatten):
            x = GradientScale(conv_scale)(x)
    return keras.Model(inputs, x, name=f"{net.name}_scaled")


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
        self.conv_scale.assign(0.0 if freeze == "conv" else 1.0)


def load_base(path: str) -> keras.Model:
    if not path:
        raise UserError("transfer learning needs a pretrained model: --set pretrained=RUN_DIR")
    from . import predict

    base = predict.load(path)
    if not isinstance(base, Predictor):
        raise UserError(f"pretrained = {path}: expected one full net, not a group of specialists")
    return base.net


def transfer(base: keras.Model, base_name: str) -> Callable:
    """A `prepare` hook for train(): copy every layer but the output from `base`, then scale."""

    def prepare(net: keras.Model, recipe: Recipe):
        ours = [layer for layer in net.layers if layer.weights]
        theirs = [layer for layer in base.layers if layer.weights]
        if len(ours) != len(theirs):
            raise UserError(f"pretrained = {base_name}: its net has {len(theirs)} weighted layers, "
                            f"the recipe's has {len(ours)}; use the same architecture")
        for mine, source in zip(ours[:-1], theirs[:-1], strict=True):
            shapes = [w.shape for w in mine.weights], [w.shape for w in source.weights]
            if shapes[0] != shapes[1]:
                raise UserError(f"pretrained = {base_name}: layer {source.name} has weights "
                                f"{shapes[1]}, the recipe's net needs {shapes[0]}")
            mine.set_weights(source.get_weights())
        if recipe.body_learning_rate is not None and recipe.optimizer != "sgd":
            raise UserError("body_learning_rate scales the body's gradients, which is a learning "
                            "rate only under SGD; use optimizer = \"sgd\"")
        conv_scale = keras.Variable(1.0, trainable=False, name="conv_gradient_scale")
        body_scale = keras.Variable(1.0, trainable=False, name="body_gradient_scale")
        return (with_gradient_scales(net, conv_scale, body_scale),
                [BodySchedule(recipe, conv_scale, body_scale)])

    return prepare


def member_recipe(recipe: Recipe, group: str, keypoints: list[str]) -> Recipe:
    return recipe.replace(name=f"{recipe.name}-{group}", columns=columns_of(keypoints),
                          dropna=True, groups={})


def train_group(recipe: Recipe, data_path: str | Path | None, out: str | Path,
                epochs: int | None = None, checkpoint_seconds: float = 30.0,
                max_seconds: float | None = None, log: Callable[[str], None] = print,
                progress: str | bool | None = "auto") -> runs.RunFolder:
    """Train (or resume) each group's specialist in turn; finished members are kept."""
    out = Path(out)
    manifest_path = out / runs.MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        data_path = data_path or manifest["data"]
    elif out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out}: folder exists and is not a specialists run")
    else:
        manifest = {"recipe": recipe.name, "data": str(Path(data_path).resolve()),
                    "groups": {g: columns_of(k) for g, k in recipe.groups.items()}}
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "recipe.toml", recipe.to_toml())
        atomic_write_text(out / "data.json", json.dumps(
            {"data": manifest["data"], "columns": recipe.columns}, indent=1))
        atomic_write_text(manifest_path, json.dumps(manifest, indent=1))
    prepare = transfer(load_base(recipe.pretrained), recipe.pretrained) if recipe.pretrained \
        else None
    for i, (group, keypoints) in enumerate(recipe.groups.items(), start=1):
        member = member_recipe(recipe, group, keypoints)
        folder = out / group
        log(f"== specialist {i}/{len(recipe.groups)}: {group} ({', '.join(keypoints)})")
        if (folder / "summary.json").is_file() and not epochs:
            log(f"   {folder} is finished; kept")
            continue
        resume = (folder / "recipe.toml").is_file()
        training.train(None if resume else member, data_path, folder, resume=resume,
                        epochs=epochs if resume else None, checkpoint_seconds=checkpoint_seconds,
                        max_seconds=max_seconds, log=log, prepare=prepare, progress=progress)
    return runs.RunFolder(out)
