"""Load any trained model (run folder, .keras file, group of specialists) as one predictor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .data import IMAGE_SIZE, unscale
from .errors import UserError
from .keypoints import COLUMNS, flip_permutation, x_mask


class Predictor:
    """Faces (N, 96, 96, 1) in [0, 1] -> keypoints in pixels, one column per name in `columns`."""

    def __init__(self, net, columns: list[str], tta: bool = False, name: str = ""):
        self.net, self.columns, self.tta, self.name = net, list(columns), tta, name

    def predict_scaled(self, X: np.ndarray) -> np.ndarray:
        from .train import predict_scaled

        y = predict_scaled(self.net, X)
        if self.tta:
            from .augment import flip_keypoints

            mirrored = predict_scaled(self.net, X[:, :, ::-1, :].copy())
            unflipped = flip_keypoints(mirrored, flip_permutation(self.columns),
                                       x_mask(self.columns))
            y = (y + np.asarray(unflipped)) / 2
        return y

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Keypoints in pixels, clipped to the image."""
        return np.clip(unscale(self.predict_scaled(X)), 0.0, float(IMAGE_SIZE))


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
    if path.suffix != ".keras":
        raise UserError(f"MODEL {path}: expected a run folder or a .keras file")
    import keras

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
