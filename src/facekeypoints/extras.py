"""The base install is what inference needs (`detect`, `serve`'s model, `fk.Landmarker`):
training, the tutorial's data files and plots, and the HOG detector come with extras. A part
that needs a package the install left out says which extra brings it, in one line."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import UserError

# the packages each extra brings that the base install leaves out (pyproject.toml's)
EXTRA_OF = {"pandas": "train", "matplotlib": "train", "keras": "train", "tensorflow": "train",
            "tf2onnx": "train", "onnx": "train", "pydot": "train", "dlib": "hog",
            "ray": "ray", "pyarrow": "ray", "fastapi": "serve", "uvicorn": "serve",
            "gradio": "serve", "multipart": "serve", "tensorboard": "tensorboard"}


class MissingExtra(UserError):
    """A package of an extra this install does not have."""


def missing(module: str, what: str = "this") -> MissingExtra:
    """The one-line error for `what` (a command, a feature) needing `module`."""
    top = module.split(".")[0]
    extra = EXTRA_OF.get(top, "train")
    return MissingExtra(f"{what} needs {top}, which this install leaves out: pip install "
                        f"'facekeypoints[{extra}]' (or 'facekeypoints[all]' for everything)")


def is_missing_extra(error: BaseException) -> bool:
    """Whether `error` is an import of a package that one of our extras brings."""
    return isinstance(error, ModuleNotFoundError) and \
        (error.name or "").split(".")[0] in EXTRA_OF


class _Absent:
    """Stands in for a module the install left out: any use of it is `missing`'s error."""

    def __init__(self, module: str, what: str):
        self._module, self._what = module, what

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise missing(self._module, self._what)


def optional(module: str, what: str) -> ModuleType:
    """`module`, or where the install left it out a stand-in that says which extra to install
    when `what` first uses it (so that modules the base install imports may name it)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] != module.split(".")[0]:
            raise
        return _Absent(module, what)  # type: ignore[return-value]
