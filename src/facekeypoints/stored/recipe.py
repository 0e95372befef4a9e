"""Recipes: every setting of a training run in one small, declarative TOML file.

Built-in recipes live in `facekeypoints/stored/recipes/NAME.toml`; a recipe may `extends`
another and change only what differs. Users copy one, edit it, and pass its path to `--recipe`.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..keypoints import COLUMNS, IMAGE_SIZE
from ..schemes import BUILTIN, for_columns


@dataclass
class Recipe:
    name: str = ""
    description: str = ""
    # data
    columns: list[str] = field(default_factory=list)  # keypoint columns; [] = all of the data's
    scheme: str = ""  # the labels' scheme: built-in name or .toml file ("" = from the data file)
    dropna: bool = True  # drop rows with any selected label missing (the tutorial's way)
    validation: float = 0.2  # held-out fraction, split by person when the data names them
    seed: int = 42
    split_seed: int | None = None  # who is held out (default: seed); fix it to vary seed alone
    # model
    model: str = "cnn"  # mlp | cnn | mesh (the frozen face mesh, a ridge head) | mesh-net
    # (the face mesh rebuilt in Keras and fine-tuned, its head started from the ridge fit)
    hidden: list[int] = field(default_factory=lambda: [100])  # mlp
    conv: list[list[int]] = field(default_factory=lambda: [[32, 3], [64, 2], [128, 2]])
    dense: list[int] = field(default_factory=lambda: [500, 500])
    dropout: list[float] = field(default_factory=list)  # after each conv block, then each dense
    batch_norm: bool = False  # cnn: batch norm between each conv and its ReLU
    zero_output: bool = False  # start the output layer at zero: the mean face
    space_to_depth: int = 1  # cnn: fold NxN pixel blocks into channels first (2: 48x48x4)
    padding: str = "valid"  # cnn: "valid" (the tutorial's) or "same" (keeps each map's size)
    ridge: float = 1.0  # mesh, mesh-net: the (starting) head's ridge penalty
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
    mirror: str = "pixel"  # where flipped labels' x mirrors: pixel (x -> 95 - x) | measured
    precision: str = "auto"  # auto (mixed float16 on a GPU) | mixed | float32
    tensorboard: bool = False  # also log each epoch to RUN/tensorboard (tensorboard --logdir RUN)
    # specialists: group name -> keypoint names; each group is trained as its own net
    groups: dict[str, list[str]] = field(default_factory=dict)
    pretrained: str = ""  # run folder or .keras model whose body starts the net (or specialists)
    freeze: str = "none"  # none | conv | until:N (freeze the body for N epochs) | head (mesh-net)
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

    def changes_from(self, other: Recipe) -> dict[str, Any]:
        """The settings that differ from `other`, name and description aside: what a step of
        the tutorial changed."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("name", "description")
                and getattr(self, f.name) != getattr(other, f.name)}


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
    files = resources.files("facekeypoints.stored") / "recipes"
    names = [p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml")]
    return sorted(names, key=lambda n: (len(n), n))


def builtin_text(name: str) -> str:
    path = resources.files("facekeypoints.stored") / "recipes" / f"{name}.toml"
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


@dataclass(frozen=True)
class Given:
    """One setting as a user gave it, and how (`--set lr=0.1`, `--learning-rate 0.1`, ...)."""

    key: str
    value: Any
    origin: str


def merge(given: list[Given]) -> tuple[dict[str, Any], dict[str, str]]:
    """Settings from every route (options, `--set`, keyword arguments) merged in one place.

    A setting named twice with different values is an error naming both; the same value twice
    is fine. Returns the values and, for error messages, where each one came from."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for g in given:
        if g.key in values and values[g.key] != g.value:
            raise UserError(f"{g.key} is given twice with different values: {origins[g.key]} "
                            f"and {g.origin}; give it once")
        values[g.key], origins[g.key] = g.value, g.origin
    return values, origins


def parse_setting(pair: str) -> Given:
    """`KEY=VALUE` as `--set` takes it: the value is TOML (`0.1`, `true`, `[1, 2]`), or a bare
    word taken as a string."""
    key, sep, text = pair.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"--set {pair}: expected KEY=VALUE, e.g. --set dropout=[0.1,0.2]")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()  # a bare word is a string
    return Given(key, value, f"--set {pair}")


def load(source: str, overrides: dict[str, Any] | None = None,
         origins: dict[str, str] | None = None) -> Recipe:
    """A built-in recipe by name, or a .toml file, with settings applied on top.

    `origins` says where each override came from (an option, `--set`), so that a bad value is
    reported the way the user gave it."""
    values = _read(source)
    values.setdefault("name", Path(source).stem)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    origins = {k: origins[k] if origins and k in origins else f"{k}={v!r}"
               for k, v in overrides.items()}
    values.update(overrides)
    return from_dict(values, source, origins)


def from_dict(values: dict[str, Any], source: str = "recipe",
              origins: dict[str, str] | None = None) -> Recipe:
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        where = origins.get(unknown[0], source) if origins else source
        raise UserError(f"{where}: unknown setting(s) {', '.join(unknown)}; "
                        f"known: {', '.join(FIELDS)}")
    values = {k: _typed(k, v, source, origins or {}) for k, v in values.items()}
    recipe = Recipe(**values)
    _check(recipe, source, origins or {})
    return recipe


_TYPES = typing.get_type_hints(Recipe)


def _typed(key: str, value: Any, source: str, origins: dict[str, str]) -> Any:
    """The value with the type its field declares (a whole number is a float where a float is
    wanted), or a one-line error naming where it came from."""
    expected = _TYPES[key]
    converted = _convert(value, expected)
    if converted is _WRONG:
        where = origins.get(key) or f"{source}: {key} = {value!r}"
        raise UserError(f"{where}: expected {_describe(expected)}")
    return converted


_WRONG = object()


def _convert(value: Any, expected: Any) -> Any:
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None) and (out := _convert(value, arg)) is not _WRONG:
                return out
        return _WRONG
    if origin is list:
        if not isinstance(value, list):
            return _WRONG
        items = [_convert(v, args[0]) for v in value]
        return _WRONG if any(i is _WRONG for i in items) else items
    if origin is dict:
        if not isinstance(value, dict):
            return _WRONG
        items = {k: _convert(v, args[1]) for k, v in value.items()}
        return _WRONG if any(i is _WRONG for i in items.values()) else items
    if expected is bool:
        return value if isinstance(value, bool) else _WRONG
    if expected is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _WRONG
    if expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) \
            and math.isfinite(value)
        return float(value) if ok else _WRONG
    if expected is str:
        return value if isinstance(value, str) else _WRONG
    return value


def _describe(expected: Any, plural: bool = False) -> str:
    """'a whole number', 'a list of lists of whole numbers', ... for error messages."""
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a, plural) for a in args if a is not type(None))
    if origin is list:
        return ("lists of " if plural else "a list of ") + _describe(args[0], plural=True)
    if origin is dict:
        return ("tables of " if plural else "a table of ") + _describe(args[1], plural=True)
    if plural:
        return {bool: "true or false values", int: "whole numbers", float: "numbers",
                str: "strings"}[expected]
    return {bool: "true or false", int: "a whole number", float: "a number",
            str: "a string"}[expected]


def _final_map_size(r: Recipe) -> int:
    size = IMAGE_SIZE // r.space_to_depth
    for layer in r.conv:
        size = (size if r.padding == "same" else size - layer[1] + 1) // 2
    return size


def _check(r: Recipe, source: str, origins: dict[str, str] | None = None) -> None:
    """Ranges and combinations, reported as the user gave the setting (file or option)."""
    origins = origins or {}

    def bad(setting: str, expected: str) -> UserError:
        where = origins.get(setting) or f"{source}: {setting} = {getattr(r, setting)!r}"
        return UserError(f"{where}: expected {expected}")

    def positive(setting: str, whole: bool = False) -> None:
        value = getattr(r, setting)
        if value is not None and not value > 0:
            raise bad(setting, "a positive whole number" if whole else "a positive number")

    def at_least_zero(setting: str) -> None:
        value = getattr(r, setting)
        if value is not None and not value >= 0:
            raise bad(setting, "a number of at least 0")

    def fraction(setting: str) -> None:
        value = getattr(r, setting)
        if value is not None and not 0 <= value < 1:
            raise bad(setting, "a fraction from 0 to below 1")

    if r.model not in ("mlp", "cnn", "mesh", "mesh-net"):
        raise bad("model", "mlp, cnn, mesh or mesh-net")
    if r.model == "mesh-net" and r.pretrained:
        raise bad("pretrained", "nothing for model = \"mesh-net\" (it starts from the shipped "
                  "face mesh)")
    if r.padding not in ("valid", "same"):
        raise bad("padding", "valid or same")
    if r.space_to_depth not in (1, 2, 3, 4, 6, 8):
        raise bad("space_to_depth", "1, 2, 3, 4, 6 or 8 (a divisor of 96)")
    if not all(len(c) == 2 and all(v > 0 for v in c) for c in r.conv):
        raise bad("conv", "[filters, size] pairs of positive whole numbers")
    if r.model == "cnn" and _final_map_size(r) < 1:
        side = IMAGE_SIZE // r.space_to_depth
        raise bad("conv", f"layers that leave a map of at least 1x1 from a {side}x{side} input "
                  f"({r.padding} padding, 2x2 pooling after each)")
    for setting in ("hidden", "dense"):
        if any(units < 1 for units in getattr(r, setting)):
            raise bad(setting, "layer sizes of at least 1 unit")
    if r.mirror not in ("pixel", "measured"):
        raise bad("mirror", "pixel or measured")
    if r.precision not in ("auto", "mixed", "float32"):
        raise bad("precision", "auto, mixed or float32")
    if r.optimizer not in ("sgd", "adamw"):
        raise bad("optimizer", "sgd or adamw")
    for setting in ("epochs", "batch_size"):
        positive(setting, whole=True)
    for setting in ("seed", "split_seed", "patience"):
        at_least_zero(setting)
    for setting in ("learning_rate", "learning_rate_end", "body_learning_rate", "ridge"):
        positive(setting)
    for setting in ("momentum", "momentum_end", "validation", "zoom", "contrast"):
        fraction(setting)
    for setting in ("weight_decay", "warmup_epochs", "rotate", "shift", "brightness"):
        at_least_zero(setting)
    if r.rotate > 180:
        raise bad("rotate", "degrees from 0 to 180")
    if any(not 0 <= d < 1 for d in r.dropout):
        raise bad("dropout", "rates from 0 to below 1")
    xs, ys = r.columns[::2], r.columns[1::2]
    paired = len(xs) == len(ys) and all(
        a.endswith("_x") and b == a[:-1] + "y" for a, b in zip(xs, ys, strict=True))
    if len(r.columns) % 2 or not paired:
        raise bad("columns", f"pairs of keypoint columns, x then y, such as {COLUMNS[0]} "
                             "(Kaggle's) or p0_x (iBUG's 68)")
    if r.scheme and not (r.scheme in BUILTIN or r.scheme.endswith(".toml")):
        raise bad("scheme", f"one of {', '.join(BUILTIN)} or a .toml file")
    if (r.flip or r.tta) and r.columns and not r.scheme.endswith(".toml"):
        try:  # a user's own scheme (a TOML's, a COCO file's names) is checked with the data
            builtin_scheme = for_columns(r.columns, "columns")
        except UserError:
            builtin_scheme = None
        try:
            if builtin_scheme is not None:
                builtin_scheme.flip_permutation(r.columns)
        except UserError as e:
            raise UserError(f"{source}: flip or tta needs both sides of each keypoint: {e}") \
                from None
    for group, names in r.groups.items():
        if not names or not all(isinstance(k, str) and k.isidentifier() for k in names):
            raise UserError(f"{origins.get('groups', source)}: group {group!r} = {names!r}, "
                            "expected keypoint names such as 'nose_tip'")
    if not (r.freeze in ("none", "conv") or (r.freeze.startswith("until:")
                                             and r.freeze[6:].isdigit())
            or (r.freeze == "head" and r.model == "mesh-net")):
        raise bad("freeze", "none, conv or until:N" + (", or head (the head stays the ridge "
                                                       "fit)" if r.model == "mesh-net" else ""))
