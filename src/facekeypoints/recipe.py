"""Recipes: every setting of a training run in one small, declarative TOML file.

Built-in recipes live in `facekeypoints/recipes/NAME.toml`; a recipe may `extends` another and
change only what differs. Users copy one, edit it, and pass its path to `--recipe`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import UserError
from .keypoints import COLUMNS, IMAGE_SIZE, flip_permutation


@dataclass
class Recipe:
    name: str = ""
    description: str = ""
    # data
    columns: list[str] = field(default_factory=lambda: list(COLUMNS))
    dropna: bool = True  # drop rows with any selected label missing (the tutorial's way)
    validation: float = 0.2  # held-out fraction, split by person when the data names them
    seed: int = 42
    split_seed: int | None = None  # who is held out (default: seed); fix it to vary seed alone
    # model
    model: str = "cnn"  # mlp | cnn
    hidden: list[int] = field(default_factory=lambda: [100])  # mlp
    conv: list[list[int]] = field(default_factory=lambda: [[32, 3], [64, 2], [128, 2]])
    dense: list[int] = field(default_factory=lambda: [500, 500])
    dropout: list[float] = field(default_factory=list)  # after each conv block, then each dense
    batch_norm: bool = False  # cnn: batch norm between each conv and its ReLU
    zero_output: bool = False  # start the output layer at zero: the mean face
    space_to_depth: int = 1  # cnn: fold NxN pixel blocks into channels first (2: 48x48x4)
    padding: str = "valid"  # cnn: "valid" (the tutorial's) or "same" (keeps each map's size)
    # optimisation
    optimizer: str = "sgd"  # sgd | adamw
    learning_rate: float = 0.01
    learning_rate_end: float | None = None  # linear per-epoch schedule when set (sgd)
    momentum: float = 0.9
    momentum_end: float | None = None
    nesterov: bool = True
    weight_decay: float = 0.0  # adamw
    warmup_epochs: float = 0.0  # adamw: linear warm-up, then cosine decay to zero
    epochs: int = 100
    batch_size: int = 128
    patience: int = 0  # early stopping on validation loss; 0 = off
    # augmentation (training only, inside the graph) and test-time flips
    flip: bool = False
    rotate: float = 0.0  # degrees, uniform in [-rotate, rotate]
    shift: float = 0.0  # pixels
    zoom: float = 0.0  # relative, scale in [1 - zoom, 1 + zoom]
    brightness: float = 0.0  # added, in [0, 1] image units
    contrast: float = 0.0  # relative
    tta: bool = False  # average predictions of the face and its mirror image
    precision: str = "auto"  # auto (mixed float16 on a GPU) | mixed | float32
    # specialists: group name -> keypoint names; each group is trained as its own net
    groups: dict[str, list[str]] = field(default_factory=dict)
    pretrained: str = ""  # run folder or .keras model whose body starts each specialist
    freeze: str = "none"  # none | conv | until:N (freeze the body for N epochs)
    body_learning_rate: float | None = None  # pretrained layers' learning rate (default: same)

    def to_toml(self) -> str:
        lines = [f"# resolved recipe {self.name!r}"]
        tables = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, dict):
                tables.append(f"\n[{f.name}]")
                tables += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
            else:
                lines.append(f"{f.name} = {_toml_value(value)}")
        return "\n".join(lines + tables) + "\n"

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


FIELDS = {f.name: f for f in dataclasses.fields(Recipe)}


def builtin_names() -> list[str]:
    files = resources.files("facekeypoints") / "recipes"
    names = [p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml")]
    return sorted(names, key=lambda n: (len(n), n))


def builtin_text(name: str) -> str:
    path = resources.files("facekeypoints") / "recipes" / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"unknown recipe {name!r}; choose one of {', '.join(builtin_names())} "
                        "or give a .toml file")
    return path.read_text()


def _read(source: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if source in seen:
        raise UserError(f"recipe {source!r} extends itself through {' -> '.join(seen)}")
    if source.endswith(".toml"):
        path = Path(source)
        if not path.is_file():
            raise UserError(f"--recipe {source}: no such file")
        text = path.read_text()
    else:
        text = builtin_text(source)
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"recipe {source}: not valid TOML ({e})") from None
    parent = values.pop("extends", None)
    base = _read(parent, (*seen, source)) if parent else {}
    base.update(values)
    return base


def load(source: str, overrides: dict[str, Any] | None = None) -> Recipe:
    """A built-in recipe by name, or a .toml file, with command-line overrides applied."""
    values = _read(source)
    values.setdefault("name", Path(source).stem)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_dict(values, source)


def from_dict(values: dict[str, Any], source: str = "recipe") -> Recipe:
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise UserError(f"{source}: unknown setting(s) {', '.join(unknown)}; "
                        f"known: {', '.join(FIELDS)}")
    recipe = Recipe(**values)
    _check(recipe, source)
    return recipe


def _final_map_size(r: Recipe) -> int:
    size = IMAGE_SIZE // r.space_to_depth
    for layer in r.conv:
        size = (size if r.padding == "same" else size - layer[1] + 1) // 2
    return size


def _check(r: Recipe, source: str) -> None:
    def bad(setting: str, expected: str) -> UserError:
        return UserError(f"{source}: {setting} = {getattr(r, setting)!r}, expected {expected}")

    if r.model not in ("mlp", "cnn"):
        raise bad("model", "mlp or cnn")
    if r.padding not in ("valid", "same"):
        raise bad("padding", "valid or same")
    if r.space_to_depth not in (1, 2, 3, 4, 6, 8):
        raise bad("space_to_depth", "1, 2, 3, 4, 6 or 8 (a divisor of 96)")
    if not all(isinstance(c, list) and len(c) == 2 and all(isinstance(v, int) and v > 0
                                                           for v in c) for c in r.conv):
        raise bad("conv", "[filters, size] pairs of positive whole numbers")
    if r.model == "cnn" and _final_map_size(r) < 1:
        side = IMAGE_SIZE // r.space_to_depth
        raise bad("conv", f"layers that leave a map of at least 1x1 from a {side}x{side} input "
                  f"({r.padding} padding, 2x2 pooling after each)")
    if r.precision not in ("auto", "mixed", "float32"):
        raise bad("precision", "auto, mixed or float32")
    if r.optimizer not in ("sgd", "adamw"):
        raise bad("optimizer", "sgd or adamw")
    if not isinstance(r.epochs, int) or r.epochs < 1:
        raise bad("epochs", "a whole number of at least 1")
    if not isinstance(r.batch_size, int) or r.batch_size < 1:
        raise bad("batch_size", "a whole number of at least 1")
    if not 0 <= r.validation < 1:
        raise bad("validation", "a fraction from 0 to below 1")
    if not r.learning_rate > 0:
        raise bad("learning_rate", "a positive number")
    if any(not 0 <= d < 1 for d in r.dropout):
        raise bad("dropout", "rates from 0 to below 1")
    unknown = [c for c in r.columns if c not in COLUMNS]
    xs, ys = r.columns[::2], r.columns[1::2]
    paired = len(xs) == len(ys) and all(
        a.endswith("_x") and b == a[:-1] + "y" for a, b in zip(xs, ys, strict=True))
    if unknown or not r.columns or len(r.columns) % 2 or not paired:
        raise bad("columns", f"pairs of Kaggle keypoint columns, x then y, such as {COLUMNS[0]}")
    if r.flip or r.tta:
        try:
            flip_permutation(r.columns)
        except ValueError as e:
            raise UserError(f"{source}: flip or tta needs both sides of each keypoint: {e}") \
                from None
    for group, names in r.groups.items():
        listed = isinstance(names, list) and all(isinstance(k, str) for k in names)
        cols = [c for k in names for c in (f"{k}_x", f"{k}_y")] if listed else []
        if not cols or any(c not in COLUMNS for c in cols):
            raise UserError(f"{source}: group {group!r} = {names!r}, expected keypoint names "
                            "such as 'nose_tip'")
    if not (r.freeze in ("none", "conv") or r.freeze.startswith("until:")):
        raise bad("freeze", "none, conv or until:N")
