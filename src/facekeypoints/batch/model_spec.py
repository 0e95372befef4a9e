"""The model as a Ray job's workers receive it: a built-in one by name, a user's as bytes."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..inference.loading import BUILTIN_MODELS, load
from ..inference.mesh import MeshPredictor
from ..inference.predictor import OnnxPredictor, Predictor


@dataclass
class ModelSpec:
    """The model as workers receive it: a built-in one by name, else its files' bytes (so
    that nodes of a cluster need no copy of the user's files)."""

    name: str
    files: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, model: str | Path | None) -> tuple[ModelSpec, Predictor]:
        """The spec and the model loaded here; a model that needs TensorFlow is refused."""
        name = "builtin" if model is None else str(model)
        predictor = load(name, prefer_onnx=True)
        if name in BUILTIN_MODELS and not Path(name).exists():
            return cls(name), predictor
        path = Path(name)
        if isinstance(predictor, OnnxPredictor) and path.is_dir():
            return cls(name, {"model.onnx": (path / "model.onnx").read_bytes()}), predictor
        if isinstance(predictor, OnnxPredictor):
            return cls(name, {path.name: path.read_bytes()}), predictor
        if isinstance(predictor, MeshPredictor) and path.is_dir():
            files = {p.name: p.read_bytes() for p in sorted(path.iterdir())
                     if p.is_file() and p.suffix != ".keras"}
            return cls(name, files), predictor
        raise UserError(f"MODEL {name}: needs TensorFlow, which --engine ray workers do not "
                        f"load; export it to ONNX first: facekeypoints export {name}")

    def load(self) -> Predictor:
        """The model in a worker; a user's files are unpacked into a folder of their own, read
        into memory, and removed."""
        if not self.files:
            return load(self.name, prefer_onnx=True)
        with tempfile.TemporaryDirectory(prefix="facekeypoints-model-") as tmp:
            folder = Path(tmp)
            for file, data in self.files.items():
                (folder / file).write_bytes(data)
            single = next(iter(self.files)) if len(self.files) == 1 else None
            return load(folder / single if single and single.endswith(".onnx") else folder,
                        prefer_onnx=True)
