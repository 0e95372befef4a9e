"""The model as a Ray job's workers receive it: a built-in one by name, a user's as bytes."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..inference import ensemble
from ..inference.loading import BUILTIN_MODELS, load
from ..inference.predictor import GroupPredictor, OnnxPredictor, Predictor
from ..inference.uncertainty import FILE as UNCERTAINTY_FILE
from ..mesh.predictor import MeshPredictor

GROUP_MANIFEST = "specialists.json"  # a group of specialists' folder (the run folder format)


@dataclass
class ModelSpec:
    """The model as workers receive it: a built-in one by name, else its files' bytes by path
    inside one folder (so that nodes of a cluster need no copy of the user's files). Averages
    and groups of specialists travel whole: their members' files below them."""

    name: str
    files: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, model: str | Path | None) -> tuple[ModelSpec, Predictor]:
        """The spec and the model loaded here; a model that needs TensorFlow is refused."""
        name = "builtin" if model is None else str(model)
        predictor = load(name, prefer_onnx=True)
        if name in BUILTIN_MODELS and not Path(name).exists():
            return cls(name), predictor
        return cls(name, _files(Path(name), predictor, name)), predictor

    def load(self) -> Predictor:
        """The model in a worker; a user's files are unpacked into a folder of their own, read
        into memory, and removed."""
        if not self.files:
            return load(self.name, prefer_onnx=True)
        with tempfile.TemporaryDirectory(prefix="facekeypoints-model-") as tmp:
            folder = Path(tmp)
            for file, data in self.files.items():
                (folder / file).parent.mkdir(parents=True, exist_ok=True)
                (folder / file).write_bytes(data)
            single = next(iter(self.files)) if len(self.files) == 1 else None
            return load(folder / single if single and single.endswith(".onnx") else folder,
                        prefer_onnx=True)


def _files(path: Path, predictor: Predictor, model: str) -> dict[str, bytes]:
    """What a worker needs of `path` (loaded as `predictor`), by path inside its folder."""
    if isinstance(predictor, ensemble.AveragePredictor):
        members, _ = ensemble.read(path)
        files, names = {}, []
        for i, (member, loaded) in enumerate(zip(members, predictor.members, strict=True)):
            member = Path(member)
            files |= {f"member{i}/{k}": v for k, v in _files(member, loaded, model).items()}
            names.append(f"member{i}" if member.is_dir() else
                         f"member{i}/{Path(loaded.path).name}")
        manifest = json.loads((path / ensemble.MANIFEST).read_text()) | {"members": names}
        return files | {ensemble.MANIFEST: json.dumps(manifest).encode()}
    if isinstance(predictor, GroupPredictor):
        files = {GROUP_MANIFEST: (path / GROUP_MANIFEST).read_bytes()}
        for group, member in predictor.members.items():
            files |= {f"{group}/{k}": v for k, v in _files(path / group, member, model).items()}
        return files
    if isinstance(predictor, OnnxPredictor) and path.is_dir():
        # a built-in folder's copy carries its uncertainty's calibration
        return {p: (path / p).read_bytes() for p in ("model.onnx", "recipe.toml",
                                                     UNCERTAINTY_FILE)
                if (path / p).is_file()}
    if isinstance(predictor, OnnxPredictor):  # the file, or the export beside a .keras one
        return {Path(predictor.path).name: Path(predictor.path).read_bytes()}
    if isinstance(predictor, MeshPredictor) and path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir())
                if p.is_file() and p.suffix != ".keras"}
    where = "" if str(path) == model else f" (its member {path})"
    raise UserError(f"MODEL {model}: needs TensorFlow{where}, which --engine ray workers do not "
                    f"load; export it to ONNX first: facekeypoints export {model}")
