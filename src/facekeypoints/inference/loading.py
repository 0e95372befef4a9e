"""MODEL as the command line takes it, loaded: a run folder (one net, a group of specialists, a
mesh run or an average of models), a saved .keras file or an exported .onnx file."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from ..errors import UserError
from ..keypoints import COLUMNS
from ..quiet_import import quiet_keras
from ..stored.runs import MANIFEST, RunFolder
from . import ensemble
from .predictor import GroupPredictor, OnnxPredictor, Predictor
from .uncertainty import FILE as UNCERTAINTY_FILE
from .uncertainty import Calibration

# MODEL names that need no file of the user's: the face mesh fine-tuned on the shared faces for
# Kaggle's 15 points and for iBUG's 68 (each folder's NOTICE says how to refit them), and the
# mesh's own 468 points
BUILTIN_MODELS = {"builtin": "Kaggle's 15 keypoints", "builtin68": "iBUG's 68 points",
                  "mesh468": "the face mesh's own 468 points",
                  "mesh478": "the face mesh's 468 points and 5 per iris (MediaPipe's iris model)"}
# in each built-in folder, with model.tflite (the same net) beside: a folder holding one and no
# recipe.toml loads it
BUILTIN_FILE = "model.onnx"


def builtin_path(name: str = "builtin") -> Path:
    """A built-in model's folder (its NOTICE says how it was fitted, and how to refit it)."""
    return Path(str(resources.files("facekeypoints") / "pretrained" / name))


def load(model: str | Path | Predictor | None = None, prefer_onnx: bool = False) -> Predictor:
    """A Predictor for MODEL (None: the built-in model; `builtin68`, `mesh468`, `mesh478`: the
    others in BUILTIN_MODELS); one passes through. With `prefer_onnx`, a run folder or .keras
    file whose net was exported (model.onnx or the .onnx beside, newer than the .keras) loads
    that, as do the members of a group or an average: no TensorFlow."""
    if isinstance(model, Predictor):
        return model
    if model is None:
        model = "builtin"
    if isinstance(model, str) and model in BUILTIN_MODELS and not Path(model).exists():
        if model in ("mesh468", "mesh478"):
            from ..mesh.predictor import MeshPointsPredictor

            return MeshPointsPredictor(irises=model == "mesh478")
        predictor = load(builtin_path(model))
        predictor.name = model  # what the user calls it, in logs, the server and the page
        return predictor
    path = getattr(model, "path", model)  # a Run object stands for its folder
    if not isinstance(path, str | os.PathLike):
        raise UserError(f"MODEL {model!r}: expected a path, a built-in model's name "
                        f"({', '.join(BUILTIN_MODELS)}) or a loaded model")
    path = Path(path)
    if not path.exists():
        raise UserError(f"MODEL {path}: no such run folder or model file, nor a built-in "
                        f"model ({', '.join(BUILTIN_MODELS)})")
    predictor = _load_path(path, prefer_onnx)
    if path.is_dir():  # a built-in model's, or a run calibrated by tools/calibrate_uncertainty.py
        calibration = Calibration.read(path)
        if calibration is not None and not calibration.matches(predictor.keypoints):
            raise UserError(f"{path / UNCERTAINTY_FILE}: calibrated for other keypoints than "
                            "the model's; remake it with tools/calibrate_uncertainty.py")
        predictor.calibration = calibration
    return predictor


def _load_path(path: Path, prefer_onnx: bool) -> Predictor:
    if path.is_dir() and RunFolder(path).is_group:
        return _load_group(path, prefer_onnx)
    if path.is_dir() and (path / ensemble.MANIFEST).is_file():
        members, weights = ensemble.read(path)
        return ensemble.AveragePredictor([load(m, prefer_onnx) for m in members], weights,
                                         path.name)
    if path.is_dir() and not (path / "recipe.toml").is_file() and (path / BUILTIN_FILE).is_file():
        # a built-in folder (the tuned mesh exported by tools/make_builtin_model.py) or a copy
        return OnnxPredictor(path / BUILTIN_FILE)
    if path.is_dir():
        run = RunFolder(path)
        recipe = run.load_recipe()
        if recipe.model == "mesh":
            from ..mesh import predictor

            return predictor.load(run, recipe)
        onnx_file, keras_file = path / "model.onnx", path / "model.keras"
        if prefer_onnx and onnx_file.is_file() and (not keras_file.is_file() or (
                onnx_file.stat().st_mtime >= keras_file.stat().st_mtime)):
            onnx_predictor = OnnxPredictor(onnx_file)
            # a tuned mesh's export from before exports carried the photo head would detect
            # on photos with the net alone: the Keras run then
            if onnx_predictor.photo_head is not None or not (
                    recipe.model == "mesh-net" and (path / "photo_head.npz").is_file()):
                return onnx_predictor
        quiet_keras()
        net, scheme = run.trained_net(recipe), run.scheme(recipe.columns)
        if recipe.model == "mesh-net" and (path / "photo_head.npz").is_file():
            from ..mesh.predictor import PhotoHead, TunedMeshPredictor

            return TunedMeshPredictor(net, recipe.columns, recipe.tta, recipe.name, scheme,
                                      PhotoHead.load(path / "photo_head.npz"),
                                      mirror_axis=run.mirror_axis())
        return Predictor(net, recipe.columns, recipe.tta, recipe.name, scheme, run.mirror_axis())
    if path.suffix == ".onnx":
        return OnnxPredictor(path)
    if path.suffix != ".keras":
        raise UserError(f"MODEL {path}: expected a run folder, a .keras or an .onnx file")
    exported = path.with_suffix(".onnx")
    if prefer_onnx and exported.is_file() and exported.stat().st_mtime >= path.stat().st_mtime:
        return OnnxPredictor(exported)
    quiet_keras()
    import keras

    from ..stored import nets  # noqa: F401 - registers our layers with Keras' loader

    try:
        net = keras.models.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - any load failure is the file's fault here
        raise UserError(f"MODEL {path}: cannot load this model ({type(e).__name__})") from None
    columns, tta = _columns_beside(path, int(net.output_shape[-1]))
    beside = RunFolder(path.parent)
    return Predictor(net, columns, tta, path.stem, beside.scheme(columns), beside.mirror_axis())


def _load_group(path: Path, prefer_onnx: bool = False) -> GroupPredictor:
    manifest = json.loads((path / MANIFEST).read_text())
    members = {}
    for group, columns in manifest["groups"].items():
        folder = path / group
        if not folder.is_dir():
            raise UserError(f"{path}: specialist {group!r} is missing ({folder} not found)")
        member = load(folder, prefer_onnx)
        if member.columns != columns:
            raise UserError(f"{path}: specialist {group!r} predicts {member.columns}, the group "
                            f"expects {columns}")
        members[group] = member
    return GroupPredictor(members, path.name)


def _columns_beside(path: Path, n_out: int) -> tuple[list[str], bool]:
    """A model inside a run folder takes its columns from there; a bare one must predict all 30."""
    data_json, recipe_toml = path.parent / "data.json", path.parent / "recipe.toml"
    if data_json.is_file() and recipe_toml.is_file():
        from ..stored import recipe as recipe_mod

        columns = json.loads(data_json.read_text())["columns"]
        return columns, recipe_mod.load(str(recipe_toml)).tta
    if n_out != len(COLUMNS):
        raise UserError(f"MODEL {path}: predicts {n_out} values and has no run folder naming "
                        "them; expected 30")
    return list(COLUMNS), False
