"""Schemes from where they are kept: the built-in TOML files, a user's TOML file, a run's or an
exported model's record, and the built-in scheme a file's columns belong to."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..keypoints import KEYPOINTS, MEAN_SHAPE, mirror_name
from .scheme import BUILTIN, KEYS, Scheme


def builtin(name: str) -> Scheme:
    if name not in BUILTIN:
        raise UserError(f"unknown scheme {name!r}; choose one of {', '.join(BUILTIN)} or give "
                        "a .toml file")
    if name not in _CACHE:
        text = (resources.files("facekeypoints.schemes") / f"{name}.toml").read_text()
        values = tomllib.loads(text)
        if name == "kaggle15":
            values["mean_shape"] = MEAN_SHAPE.tolist()
        _CACHE[name] = from_dict(values, f"scheme {name}")
    return _CACHE[name]


_CACHE: dict[str, Scheme] = {}


def is_builtin(scheme: Scheme) -> bool:
    """Whether a scheme is one of ours, unchanged (a record may then name it alone)."""
    return scheme.name in BUILTIN and scheme == builtin(scheme.name)


def record(scheme: Scheme) -> dict[str, Any]:
    """What a run folder or an exported model keeps of its scheme: a built-in one's name, a
    user's whole scheme (with the mean shape its training labels gave it)."""
    return {"name": scheme.name} if is_builtin(scheme) else scheme.to_dict()


def load(source: str | Path | Scheme | dict) -> Scheme:
    """A scheme by built-in name, from a .toml file, or from its dict (a run folder's record)."""
    if isinstance(source, Scheme):
        return source
    if isinstance(source, dict):
        return builtin(source["name"]) if source.get("name") in BUILTIN and set(source) <= {
            "name"} else from_dict(source, f"scheme {source.get('name', '')}")
    text = str(source)
    if not text.endswith(".toml"):
        return builtin(text)
    path = Path(text)
    if not path.is_file():
        raise UserError(f"--scheme {path}: no such file")
    try:
        values = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid TOML ({e})") from None
    values.setdefault("name", path.stem)
    return from_dict(values, str(path))


def from_dict(values: dict[str, Any], source: str) -> Scheme:
    """A scheme from its keys, every name checked: one line naming what does not fit."""
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise UserError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    points = values.get("points")
    if not isinstance(points, list) or not points or not all(
            isinstance(p, str) and p and p.isidentifier() for p in points):
        raise UserError(f"{source}: points = expected a list of point names (letters, digits "
                        "and _, such as \"nose_tip\")")
    if len(set(points)) != len(points):
        twice = next(p for p in points if points.count(p) > 1)
        raise UserError(f"{source}: point {twice!r} is named twice")
    known = set(points)

    def names(key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UserError(f"{source}: {key} = expected lists of point names")
        strangers = [v for v in value if v not in known]
        if strangers:
            raise UserError(f"{source}: {key} names {strangers[0]!r}, which is not one of the "
                            "points")
        return tuple(value)

    if "mirror" in values:
        mirror = tuple(names("mirror", pair) for pair in values["mirror"])
        if any(len(pair) != 2 for pair in mirror):
            raise UserError(f"{source}: mirror = expected pairs of point names")
    else:  # by the names, as Kaggle's: left_* <-> right_*
        mirror = tuple(sorted({tuple(sorted((p, mirror_name(p)))) for p in points
                               if mirror_name(p) != p and mirror_name(p) in known}))
    paired = [p for pair in mirror for p in pair]
    if len(set(paired)) != len(paired):
        twice = next(p for p in paired if paired.count(p) > 1)
        raise UserError(f"{source}: mirror pairs {twice!r} more than once")
    lines = tuple(names("lines", line) for line in values.get("lines", []))
    eyes = values.get("eyes")
    if eyes is not None:
        if not isinstance(eyes, list) or len(eyes) != 2:
            raise UserError(f"{source}: eyes = expected two lists: the subject's left eye's "
                            "points, then the right eye's")
        eyes = (names("eyes", eyes[0]), names("eyes", eyes[1]))
    mean_shape = values.get("mean_shape")
    if mean_shape is not None:
        mean_shape = np.asarray(mean_shape, np.float64)
        if mean_shape.shape != (len(points), 2):
            raise UserError(f"{source}: mean_shape = expected {len(points)} [x, y] pairs")
    kaggle15 = {k: names("kaggle15", v) for k, v in values.get("kaggle15", {}).items()}
    if kaggle15 and set(kaggle15) != set(KEYPOINTS):
        raise UserError(f"{source}: [kaggle15] expected one entry for each of Kaggle's 15 "
                        "keypoints")
    inside = values.get("inside", False)
    if not isinstance(inside, bool):
        raise UserError(f"{source}: inside = expected true or false")
    return Scheme(str(values.get("name", "")), tuple(points), mirror, lines, eyes, mean_shape,
                  inside, kaggle15, str(values.get("description", "")))


def for_columns(columns: list[str] | tuple[str, ...], where: str = "") -> Scheme:
    """The built-in scheme that holds every one of these keypoint columns (x, y pairs)."""
    names = {c[:-2] for c in columns if c.endswith(("_x", "_y"))}
    for name in BUILTIN:
        scheme = builtin(name)
        if names and names <= set(scheme.points):
            return scheme
    sample = ", ".join(list(columns)[:3])
    raise UserError(f"{where or 'columns'}: {sample}, ... are the points of no built-in "
                    f"scheme ({', '.join(BUILTIN)}); give the scheme's .toml file with --scheme")
