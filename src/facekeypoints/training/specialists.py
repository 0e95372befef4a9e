"""Specialists: one net per keypoint group, each trained on every row where its own keypoints
are present, optionally started from a pretrained full net, saved and loaded as one predictor.

A group run folder holds `specialists.json` and one ordinary run folder per group.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import keras
from keras import layers

from ..errors import UserError
from ..files import atomic_write_text
from ..keypoints import columns_of
from ..quiet_import import quiet_keras
from ..stored.recipe import Recipe
from . import loop
from .freezing import BodySchedule, GradientScale
from .runs import MANIFEST, RunFolder, RunInterrupted


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


def load_base(path: str) -> keras.Model:
    """The pretrained net transfer learning starts from: a run folder of one Keras net, or a
    .keras file. Anything else is named in a one-line error."""
    if not path:
        raise UserError("transfer learning needs a pretrained model: --set pretrained=RUN_DIR")
    where = Path(path)
    what = f"pretrained = {path}"
    if not where.exists():
        raise UserError(f"{what}: no such run folder or .keras file")
    if where.is_dir():
        run = RunFolder(where)
        if run.is_group:
            raise UserError(f"{what}: a group of specialists; expected one full net (a run "
                            "folder such as runs/model7, or its model.keras)")
        if (where / "average.json").is_file():
            raise UserError(f"{what}: an average of models; expected one Keras net")
        recipe = run.load_recipe()
        if recipe.model == "mesh":
            raise UserError(f"{what}: a mesh run (an ONNX backbone and a ridge head); expected "
                            "a Keras net trained by a recipe such as model7")
        quiet_keras()
        return run.trained_net(recipe)
    if where.suffix != ".keras":
        kind = f"a {where.suffix} file" if where.suffix else "a file"
        raise UserError(f"{what}: {kind}; expected a run folder or a .keras file (an exported "
                        ".onnx model cannot be trained further)")
    quiet_keras()
    from ..stored import nets  # noqa: F401 - registers our layers with Keras' loader

    try:
        return keras.models.load_model(where, compile=False)
    except Exception as e:  # noqa: BLE001 - any load failure is the file's fault here
        raise UserError(f"{what}: cannot load this model ({type(e).__name__})") from None


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


def train_group(recipe: Recipe | None, data_path: str | Path | None, out: str | Path,
                resume: bool = False, epochs: int | None = None,
                checkpoint_seconds: float = 30.0, max_seconds: float | None = None,
                log: Callable[[str], None] = print,
                progress: str | bool | None = "auto") -> RunFolder:
    """Train each group's specialist in turn into one group folder. With `resume`, finished
    members are kept (or extended to `epochs`), an interrupted one continues from its
    checkpoint, and those not started yet start."""
    group, recipe, data_path = RunFolder.for_training(out, recipe, data_path, resume)
    with group.held():
        return _train_group_held(group, recipe, data_path, resume, epochs, checkpoint_seconds,
                                 max_seconds, log, progress)


def _train_group_held(group: RunFolder, recipe: Recipe, data_path: str | Path, resume: bool,
                      epochs: int | None, checkpoint_seconds: float,
                      max_seconds: float | None, log: Callable[[str], None],
                      progress: str | bool | None) -> RunFolder:
    if not recipe.groups:
        raise UserError(f"recipe {recipe.name}: no keypoint groups to train specialists for")
    if not resume:
        manifest = {"recipe": recipe.name, "data": str(Path(data_path).resolve()),
                    "groups": {g: columns_of(k) for g, k in recipe.groups.items()}}
        group.begin(recipe, {"data": manifest["data"], "columns": [
            c for columns in manifest["groups"].values() for c in columns]})
        atomic_write_text(group.path / MANIFEST, json.dumps(manifest, indent=1))
    prepare = transfer(load_base(recipe.pretrained), recipe.pretrained) if recipe.pretrained \
        else None
    for i, (name, keypoints) in enumerate(recipe.groups.items(), start=1):
        member = RunFolder(group.path / name)
        log(f"== specialist {i}/{len(recipe.groups)}: {name} ({', '.join(keypoints)})")
        status = member.status
        if status == "finished" and not epochs:
            log(f"   {member.path} is finished; kept")
            continue
        again = status != "new"
        try:
            loop.train(None if again else member_recipe(recipe, name, keypoints), data_path,
                       member.path, resume=again, epochs=epochs if again else None,
                       checkpoint_seconds=checkpoint_seconds, max_seconds=max_seconds, log=log,
                       prepare=prepare, progress=progress, resume_hint=group.path)
        except RunInterrupted:
            group.interrupt({"member": name})
            raise
    group.finish({"members": list(recipe.groups)})
    return group
