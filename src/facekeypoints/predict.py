"""Any trained model (run folder, .keras or .onnx file, group of specialists) as one predictor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import runs
from .data import IMAGE_SIZE, unscale
from .errors import UserError
from .keypoints import COLUMNS, MIRROR_X, flip_permutation, mirror_keypoints, x_mask
from .quiet_import import quiet_keras


def predict_scaled(net, X: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """A Keras net's predictions in scaled units, without `Model.predict`'s overhead per call."""
    if len(X) == 0:
        return np.zeros((0, net.output_shape[-1]), dtype=np.float32)
    from .accelerator import replicas

    if replicas(net) > 1:  # predict_on_batch would hand each replica the whole batch
        return np.asarray(net.predict(X, batch_size=batch_size, verbose=0))
    parts = [net.predict_on_batch(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
    return np.concatenate([np.asarray(p) for p in parts])


class Predictor:
    """Faces (N, 96, 96, 1) in [0, 1] -> keypoints in pixels, one column per name in `columns`.

    `net` is the Keras model (None for ONNX files and groups); `tta` averages each face's
    prediction with its mirror image's."""

    mirror_axis: float | np.ndarray = MIRROR_X  # where the labels' x mirrors (keypoints.py)

    def __init__(self, net, columns: list[str], tta: bool = False, name: str = ""):
        self.net, self.columns, self.tta, self.name = net, list(columns), tta, name

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, {len(self.columns) // 2} keypoints"
                f"{', flip TTA' if self.tta else ''})")

    def run(self, X: np.ndarray) -> np.ndarray:
        """The net on a batch, in scaled units."""
        return predict_scaled(self.net, X)

    def predict_scaled(self, X: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """Keypoints scaled to [-1, 1] as the nets are trained; `tta` overrides the model's."""
        X = _faces(X)
        if not (self.tta if tta is None else tta):
            return self.run(X)
        # average with the mirror image, mirrored back; one call for both (a video frame's one
        # face pays a model call's overhead once)
        both = self.run(np.concatenate([X, X[:, :, ::-1, :]]))
        y, mirrored = both[:len(X)], both[len(X):]
        return (y + mirror_keypoints(mirrored, flip_permutation(self.columns),
                                     x_mask(self.columns), axis=self.mirror_axis)) / 2

    def predict(self, X: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """Keypoints in pixels of the 96x96 face, clipped to the image, shape (N, columns)."""
        return np.clip(unscale(self.predict_scaled(X, tta)), 0.0, float(IMAGE_SIZE))


def _faces(X: np.ndarray) -> np.ndarray:
    """(N, 96, 96, 1) float32 in [0, 1]; (N, 96, 96) and (96, 96) faces are accepted too."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 2:
        X = X[None]
    if X.ndim == 3:
        X = X[..., None]
    if X.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise UserError(f"faces of shape {X.shape}: expected (N, {IMAGE_SIZE}, {IMAGE_SIZE}, 1) "
                        "grey images in [0, 1]")
    return X


class OnnxPredictor(Predictor):
    """The same predictor on ONNX Runtime: no TensorFlow import, fast cold start."""

    def __init__(self, path: Path):
        import onnx
        import onnxruntime as ort

        try:
            meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False)
                    .metadata_props}
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - any failure to load is the file's fault
            raise UserError(f"MODEL {path}: cannot load this ONNX model ({type(e).__name__})") \
                from None
        columns = json.loads(meta.get("facekeypoints.columns", json.dumps(list(COLUMNS))))
        super().__init__(None, columns, meta.get("facekeypoints.tta") == "true",
                         meta.get("facekeypoints.name", path.stem))
        self.input_name = self.session.get_inputs()[0].name
        if "facekeypoints.mirror_axis" in meta:
            self.mirror_axis = np.array(json.loads(meta["facekeypoints.mirror_axis"]))

    def run(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros((0, len(self.columns)), np.float32)
        return self.session.run(None, {self.input_name: np.asarray(X, np.float32)})[0]


class GroupPredictor(Predictor):
    """Several specialists predicting together: all their columns, in Kaggle order."""

    def __init__(self, members: dict[str, Predictor], name: str):
        columns = [c for c in COLUMNS if any(c in m.columns for m in members.values())]
        super().__init__(None, columns, False, name)
        self.members = members

    def predict_scaled(self, X: np.ndarray, tta: bool | None = None) -> np.ndarray:
        X = _faces(X)
        out = np.full((len(X), len(self.columns)), np.nan, np.float32)
        for member in self.members.values():
            idx = [self.columns.index(c) for c in member.columns]
            out[:, idx] = member.predict_scaled(X, tta)
        return out


def load(model: str | Path | Predictor, prefer_onnx: bool = False) -> Predictor:
    """MODEL as the command line takes it: a run folder (one net or a group of specialists), or
    a saved .keras or .onnx file. A Predictor passes through. With `prefer_onnx`, a run folder
    whose net was exported (model.onnx, newer than model.keras) loads that: no TensorFlow."""
    if isinstance(model, Predictor):
        return model
    path = Path(getattr(model, "path", model))  # a Run object stands for its folder
    if not path.exists():
        raise UserError(f"MODEL {path}: no such run folder or model file")
    if path.is_dir() and runs.is_group(path):
        return _load_group(path)
    if path.is_dir() and (path / "average.json").is_file():
        from . import ensemble

        return ensemble.load(path)
    if path.is_dir():
        run = runs.RunFolder(path)
        recipe = run.load_recipe()
        if recipe.model == "mesh":
            from . import mesh

            return mesh.load(run, recipe)
        onnx_file, keras_file = path / "model.onnx", path / "model.keras"
        if prefer_onnx and onnx_file.is_file() and (not keras_file.is_file() or (
                onnx_file.stat().st_mtime >= keras_file.stat().st_mtime)):
            return OnnxPredictor(onnx_file)
        quiet_keras()
        predictor = Predictor(runs.net_from_run(run, recipe), recipe.columns, recipe.tta,
                              recipe.name)
        predictor.mirror_axis = run.mirror_axis()
        return predictor
    if path.suffix == ".onnx":
        return OnnxPredictor(path)
    if path.suffix != ".keras":
        raise UserError(f"MODEL {path}: expected a run folder, a .keras or an .onnx file")
    quiet_keras()
    import keras

    from . import models  # noqa: F401 - registers our layers with Keras' loader

    try:
        net = keras.models.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - any load failure is the file's fault here
        raise UserError(f"MODEL {path}: cannot load this model ({type(e).__name__})") from None
    columns, tta = _columns_beside(path, int(net.output_shape[-1]))
    predictor = Predictor(net, columns, tta, path.stem)
    predictor.mirror_axis = runs.RunFolder(path.parent).mirror_axis()
    return predictor


def _load_group(path: Path) -> GroupPredictor:
    manifest = json.loads((path / runs.MANIFEST).read_text())
    members = {}
    for group, columns in manifest["groups"].items():
        folder = path / group
        if not folder.is_dir():
            raise UserError(f"{path}: specialist {group!r} is missing ({folder} not found)")
        member = load(folder)
        if member.columns != columns:
            raise UserError(f"{path}: specialist {group!r} predicts {member.columns}, the group "
                            f"expects {columns}")
        members[group] = member
    return GroupPredictor(members, path.name)


def _columns_beside(path: Path, n_out: int) -> tuple[list[str], bool]:
    """A model inside a run folder takes its columns from there; a bare one must predict all 30."""
    data_json, recipe_toml = path.parent / "data.json", path.parent / "recipe.toml"
    if data_json.is_file() and recipe_toml.is_file():
        from . import recipe as recipe_mod

        columns = json.loads(data_json.read_text())["columns"]
        return columns, recipe_mod.load(str(recipe_toml)).tta
    if n_out != len(COLUMNS):
        raise UserError(f"MODEL {path}: predicts {n_out} values and has no run folder naming "
                        "them; expected 30")
    return list(COLUMNS), False
