"""Landmark schemes as data: the ordered point names, the mirror pairs that flips need, the
lines to draw, the eye points that normalise errors, and where each point sits in a face framed
as the training faces are.

Built in: Kaggle's 15 keypoints (`kaggle15`), iBUG's 68 (`ibug68`, 300-W's `.pts` order, 0-based,
points named p0..p67 as in `faces68/training.csv.gz`) and the face mesh's 468 (`mesh468`, m0..m467).
A user's own scheme is a small TOML file with the same keys (docs/schemes.md):

    name = "my-points"
    points = ["chin", "left_eye", "right_eye"]
    mirror = [["left_eye", "right_eye"]]   # optional: pairs by "left"/"right" in the names
    lines = [["left_eye", "chin", "right_eye"]]   # optional
    eyes = [["left_eye"], ["right_eye"]]   # optional: NME's eye centres (subject's left, right)
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..keypoints import IMAGE_SIZE, KEYPOINTS, MEAN_SHAPE, mirror_name

BUILTIN = ("kaggle15", "ibug68", "mesh468")
KEYS = ("name", "description", "points", "mirror", "lines", "eyes", "mean_shape", "inside",
        "kaggle15")


@dataclass(frozen=True)
class Scheme:
    name: str
    points: tuple[str, ...]
    mirror: tuple[tuple[str, str], ...] = ()  # left/right pairs; others mirror onto themselves
    lines: tuple[tuple[str, ...], ...] = ()  # polylines to draw; a closed one repeats its first
    eyes: tuple[tuple[str, ...], tuple[str, ...]] | None = None  # subject's left eye, right eye
    mean_shape: np.ndarray | None = field(default=None, compare=False)  # (points, 2), 96x96 face
    inside: bool = False  # every point lies inside the face crop (Kaggle's rule)
    kaggle15: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    description: str = ""

    @property
    def columns(self) -> list[str]:
        return [f"{p}_{axis}" for p in self.points for axis in ("x", "y")]

    @property
    def bounds(self) -> tuple[float, float]:
        """The range a coordinate may take in a 96x96 face: the crop for Kaggle's points, a
        crop either side for schemes whose points (a jaw line) may leave it."""
        return (0.0, float(IMAGE_SIZE)) if self.inside else (-float(IMAGE_SIZE),
                                                               2.0 * IMAGE_SIZE)

    def partner(self, point: str) -> str:
        for a, b in self.mirror:
            if point == a:
                return b
            if point == b:
                return a
        return point

    def flip_permutation(self, columns: list[str] | tuple[str, ...]) -> np.ndarray:
        """Index array: flipped[:, i] takes its value from original[:, perm[i]]."""
        index = {c: i for i, c in enumerate(columns)}
        perm = []
        for c in columns:
            other = f"{self.partner(c[:-2])}{c[-2:]}"
            if other not in index:
                raise UserError(f"column {c!r} flips onto {other!r}, which is not selected")
            perm.append(index[other])
        return np.asarray(perm, dtype=np.int32)

    def eye_centres(self, points: np.ndarray, names: list[str] | None = None) -> np.ndarray:
        """(..., 2, 2): the subject's left and right eye centres of points (..., P, 2) in this
        scheme's order (or in `names`' order)."""
        if self.eyes is None:
            raise UserError(f"scheme {self.name}: names no eye points (`eyes`), which the "
                            "normalised mean error needs")
        order = {p: i for i, p in enumerate(names or self.points)}
        return np.stack([points[..., [order[p] for p in eye], :].mean(axis=-2)
                         for eye in self.eyes], axis=-2)

    def to_kaggle15(self, y: np.ndarray, columns: list[str]) -> tuple[np.ndarray, list[str]]:
        """Kaggle's 30 columns derived from (N, columns) pixels, for a 68-point model's
        submission (eye centres the mean of the six eye points, the rest one point each)."""
        if self.name == "kaggle15":
            return y, list(columns)
        if not self.kaggle15:
            raise UserError(f"scheme {self.name}: says nothing of how Kaggle's 15 keypoints "
                            "derive from its points (a [kaggle15] table)")
        index = {c: i for i, c in enumerate(columns)}
        out = np.empty((len(y), 2 * len(KEYPOINTS)), np.float32)
        for k, name in enumerate(KEYPOINTS):
            for a, axis in enumerate("xy"):
                idx = [index[f"{p}_{axis}"] for p in self.kaggle15[name]]
                out[:, 2 * k + a] = y[:, idx].mean(axis=1)
        return out, [f"{k}_{axis}" for k in KEYPOINTS for axis in "xy"]

    def with_mean_shape(self, mean_shape: np.ndarray) -> Scheme:
        return replace(self, mean_shape=np.asarray(mean_shape, np.float64).reshape(-1, 2))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "points": list(self.points),
                               "mirror": [list(p) for p in self.mirror],
                               "lines": [list(line) for line in self.lines],
                               "inside": self.inside}
        if self.description:
            out["description"] = self.description
        if self.eyes is not None:
            out["eyes"] = [list(e) for e in self.eyes]
        if self.mean_shape is not None:
            out["mean_shape"] = np.round(self.mean_shape, 3).tolist()
        if self.kaggle15:
            out["kaggle15"] = {k: list(v) for k, v in self.kaggle15.items()}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


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


def flip_permutation(columns: list[str] | tuple[str, ...],
                     scheme: Scheme | None = None) -> np.ndarray:
    return (scheme or for_columns(columns)).flip_permutation(columns)
