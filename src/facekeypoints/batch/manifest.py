"""A batch job's plan, written before any work: the inputs (in `detect`'s order, with size and
modification time), the model (a fingerprint of its bytes) and the settings, and the inputs
cut into tasks. Each task's results become one part; `--resume` runs the tasks with no part
and refuses where the inputs, the model or the settings are not the ones the job began with."""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from ..errors import UserError
from ..inference.loading import BUILTIN_MODELS, builtin_path, load
from ..inference.mesh import MeshPredictor
from ..inference.predictor import OnnxPredictor, Predictor
from ..photos.reading import VIDEO_SUFFIXES
from .store import Store

MANIFEST = "parts/manifest.json"
PHOTOS_PER_PART = 64  # at most: what a killed worker can lose, and one file per this many


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

    def fingerprint(self) -> str:
        version = metadata.version("facekeypoints")
        digest = hashlib.sha256(f"facekeypoints {version}\n{self.name}\n".encode())
        files = self.files or _builtin_files(self.name)
        for file, data in sorted(files.items()):
            digest.update(f"{file} {len(data)}\n".encode())
            digest.update(data)
        return digest.hexdigest()[:16]


def _builtin_files(name: str) -> dict[str, bytes]:
    folder = builtin_path(name)
    if not folder.is_dir():  # mesh468: the mesh alone, inside the package
        return {}
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@dataclass
class Manifest:
    inputs: list[dict]
    problems: list[str]
    tasks: list[list[int]]
    model: str
    fingerprint: str
    settings: dict

    @classmethod
    def plan(cls, inputs: list[dict], problems: list[str], spec: ModelSpec, settings: dict,
             workers: int, part_size: int | None = None) -> Manifest:
        """Each video is a task of its own (cutting one would change its tracking); photos go
        in runs of `part_size`, by default enough parts for four per worker, at most 64."""
        photos = [i for i, e in enumerate(inputs) if not _is_video(e["file"])]
        size = part_size or max(1, min(PHOTOS_PER_PART, math.ceil(len(photos) / (4 * workers))))
        tasks = [[i] for i, e in enumerate(inputs) if _is_video(e["file"])]
        tasks += [photos[i:i + size] for i in range(0, len(photos), size)]
        tasks.sort(key=lambda t: t[0])
        return cls(inputs, problems, tasks, spec.name, spec.fingerprint(), settings)

    @classmethod
    def read(cls, store: Store) -> Manifest:
        return cls(**json.loads(store.read_bytes(MANIFEST)))

    def write(self, store: Store) -> None:
        store.write_bytes(MANIFEST, (json.dumps(asdict(self), indent=1) + "\n").encode())

    def check_resumes(self, now: Manifest, out: str) -> None:
        """`now` (this command's plan) must be the job's: the same inputs, model and settings."""
        if now.fingerprint != self.fingerprint:
            raise UserError(f"--resume: {out} was begun with MODEL {self.model} "
                            f"(fingerprint {self.fingerprint}); this model differs "
                            f"({now.fingerprint}); use the same model or another --out")
        for key, value in self.settings.items():
            if now.settings.get(key) != value:
                raise UserError(f"--resume: {out} was begun with {key}={value!r}, not "
                                f"{now.settings.get(key)!r}; use the same settings or another "
                                "--out")
        was = {e["file"]: e for e in self.inputs}
        for entry in now.inputs:
            before = was.pop(entry["file"], None)
            if before is None:
                raise UserError(f"--resume: {entry['file']} is not among the job's inputs in "
                                f"{out}; use the same inputs or another --out")
            if before != entry:
                raise UserError(f"--resume: {entry['file']} changed since the job began (size "
                                "or modification time); use another --out")
        if was:
            raise UserError(f"--resume: {next(iter(was))} is among the job's inputs in {out} "
                            "but not this command's; use the same inputs or another --out")


def part_name(task: int) -> str:
    return f"parts/part-{task:06d}.parquet"


def _is_video(file: str) -> bool:
    return Path(file.split("?")[0]).suffix.lower() in VIDEO_SUFFIXES
