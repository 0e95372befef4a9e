"""Load any trained model (run folder, .keras file, group of specialists) as one predictor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .data import IMAGE_SIZE, unscale
from .errors import UserError
from .keypoints import COLUMNS, flip_permutation, mirror_keypoints, x_mask


class Predictor:
    """Faces (N, 96, 96, 1) in [0, 1] -> keypoints in pixels, one column per name in `columns`."""

    def __init__(self, net, columns: list[str], tta: bool = False, name: str = ""):
        self.net, self.columns, self.tta, self.name = net, list(columns), tta, name

    def run(self, X: np.ndarray) -> np.ndarray:
        """The net on a batch, in scaled units."""
        from .train import predict_scaled

        return predict_scaled(self.net, X)

    def predict_scaled(self, X: np.ndarray) -> np.ndarray:
        y = self.run(X)
        if self.tta:  # average with the mirror image's prediction, mirrored back
            mirrored = self.run(np.ascontiguousarray(X[:, :, ::-1, :]))
            y = (y + mirror_keypoints(mirrored, flip_permutation(self.columns),
                                      x_mask(self.columns))) / 2
        return y

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Keypoints in pixels, clipped to the image."""
        return np.clip(unscale(self.predict_scaled(X)), 0.0, float(IMAGE_SIZE))


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

    def run(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros((0, len(self.columns)), np.float32)
        return self.session.run(None, {self.input_name: np.asarray(X, np.float32)})[0]


def load(model: str | Path) -> Predictor:
    """MODEL as the command line takes it: a run folder, or a saved .keras model file."""
    path = Path(model)
    if not path.exists():
        raise UserError(f"MODEL {path}: no such run folder or model file")
    if path.is_dir() and (path / "specialists.json").is_file():
        from .specialists import load_group

        return load_group(path)
    if path.is_dir():
        from . import train

        run = train.RunFolder(path)
        recipe = run.load_recipe()
        net = train.net_from_run(run, recipe)
        return Predictor(net, recipe.columns, recipe.tta, recipe.name)
    if path.suffix == ".onnx":
        return OnnxPredictor(path)
    if path.suffix != ".keras":
        raise UserError(f"MODEL {path}: expected a run folder, a .keras or an .onnx file")
    import keras

    from . import models  # noqa: F401 - registers our layers with Keras' loader

    try:
        net = keras.models.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001 - any load failure is the file's fault here
        raise UserError(f"MODEL {path}: cannot load this model ({type(e).__name__})") from None
    columns, tta = _columns_beside(path, int(net.output_shape[-1]))
    return Predictor(net, columns, tta, path.stem)


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
