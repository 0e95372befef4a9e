"""A `detect` job, whichever engine runs it (this process, or Ray: `batch/`): its plan, written
before any work, and the folder it writes to.

The plan (`parts/manifest.json`, created exclusively: a second job into the same folder is
refused) holds the inputs in `detect`'s order with their size and modification time, each
input's output name, the model's fingerprint and the settings, and the inputs cut into tasks.
Each task's results become one part (`parts.py`); `--resume` runs the tasks with no part and
refuses where the inputs, the model or the settings are not the ones the job began with.

Output names: each input's path below the folder its input arguments share, so that
`vids1/clip.mp4` and `vids2/clip.mp4`, or every card's `IMG_0001.jpg`, never write over each
other's drawn copies."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import posixpath
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import UserError
from ..files import atomic_write
from .reading import VIDEO_SUFFIXES, expand_inputs

MANIFEST = "parts/manifest.json"
PHOTOS_PER_PART = 64  # at most: what a killed worker can lose, and one file per this many
FORMAT = 2  # of the manifest and parts: a job begun by another format is not resumed


class LocalFolder:
    """A job's folder on this machine's disk; `batch.store.Store` is the same for object
    storage. Every write is whole or absent (a temporary file renamed into place)."""

    def __init__(self, location: str | Path, created: bool = False):
        self.location = str(location)
        self.local: Path | None = Path(location)
        self.created = created  # by this job: removed again if the job never began

    def exists(self, name: str) -> bool:
        return (self.local / name).is_file()

    def files(self, folder: str) -> list[str]:
        path = self.local / folder
        return sorted(p.name for p in path.iterdir() if p.is_file()) if path.is_dir() else []

    def read_bytes(self, name: str) -> bytes:
        return (self.local / name).read_bytes()

    def write_bytes(self, name: str, data: bytes) -> None:
        atomic_write(self.local / name, lambda tmp: tmp.write_bytes(data))

    def create(self, name: str, data: bytes) -> None:
        """Write `name` whole, only where it does not exist yet (FileExistsError): a hard link
        of a complete temporary file, which the file system makes or refuses at once."""
        path = self.local / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.link(tmp, path)
        finally:
            os.unlink(tmp)

    def upload(self, folder: Path) -> None:  # pragma: no cover - outputs are drawn in place
        raise NotImplementedError

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held while a job writes here: a second job, even a --resume, is refused while the
        first lives; the lock dies with its process, so a killed job never leaves it stuck."""
        path = self.local / "parts" / ".lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise UserError(f"{self.location}: a detect job is running in this folder "
                                f"({holder}); wait for it, or choose another --out") from None
            f.truncate(0)
            f.write(f"pid {os.getpid()}\n")
            f.flush()
            try:
                yield
            finally:
                f.truncate(0)
                if not self.exists(MANIFEST):  # stopped before it began: leave no trace
                    path.unlink(missing_ok=True)
                    with contextlib.suppress(OSError):
                        path.parent.rmdir()
                        if self.created:
                            self.local.rmdir()


def new_folder(base: str | Path) -> Path:
    """`base`, or the first of base-2, base-3, ... that is free, made here and now: two jobs
    that start together never pick the same one."""
    base, k = Path(base), 1
    while True:
        out = base if k == 1 else base.with_name(f"{base.name}-{k}")
        try:
            out.mkdir(parents=True)
            return out
        except FileExistsError:
            k += 1
        except OSError as e:
            raise UserError(f"--out {out}: cannot make this folder ({e.strerror or e})") \
                from None


def open_folder(out: str | Path, resume: bool, made: bool = False) -> LocalFolder:
    """The job's folder, checked before any work: a folder that holds anything but a
    job is never written into, one that holds a job only with --resume. `made`: the job made
    it (`new_folder`), so it goes again if the job never begins."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, not a folder; choose a folder")
    if out.is_dir() and not (out / MANIFEST).is_file():
        if resume:
            raise UserError(f"--resume: {out} holds no detect job (no {MANIFEST}); drop "
                            "--resume to begin one in a new folder")
        if any(out.iterdir()):
            raise UserError(f"--out {out}: folder holds other files; choose a new or empty "
                            "folder (the results are never mixed with what is there)")
    elif out.is_dir() and not resume:
        raise UserError(f"--out {out}: holds a detect job already ({MANIFEST}); add --resume "
                        "to finish it, or choose another --out")
    elif not out.exists() and resume:
        raise UserError(f"--resume: {out} does not exist; drop --resume to begin a job there")
    created = made or not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UserError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    return LocalFolder(out, created)


def list_local(inputs: list[str], exclude: str | Path | None = None
               ) -> tuple[list[dict], list[str]]:
    """What `detect` reads, in its order, each with its size and modification time (the
    manifest's record of them), and the problems (`detect` names them as skipped)."""
    files, problems = expand_inputs(inputs, exclude)
    entries = []
    for path in files:
        try:
            stat = path.stat()
        except OSError as e:  # a link to nothing, a file removed since the folder was read
            problems.append(f"{path}: cannot be read ({e.strerror or e})")
            continue
        entries.append({"file": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return entries, problems


def nothing_to_process(inputs: list[str], problems: list[str]) -> UserError:
    """The error for a job with no input it can read: each problem said once."""
    if problems:
        return UserError(f"nothing to process: {'; '.join(problems)}")
    return UserError(f"nothing to process in {' '.join(inputs)}: no photos or videos")


def _where(location: str) -> str:
    """A file or folder as an absolute slash path (a URL's under /SCHEME/HOST), so that local
    paths and URLs share one tree."""
    if "://" in location:
        parts = urlsplit(location)
        path = unquote(parts.path).lstrip("/")
        return posixpath.normpath(f"/{parts.scheme}/{parts.netloc}/{path}")
    return Path(os.path.abspath(location)).as_posix()


def output_names(files: list[str], arguments: list[str]) -> list[str]:
    """Each input's output name: its path below the folder that holds every input argument,
    without its suffix (`photos/2019/IMG_0001`); where two would differ only by suffix or case,
    the suffix stays (`a.jpg`, `a.png`), and where they differ only by case, a number
    (`Clip.jpg`, `clip.jpg` -> `Clip.jpg`, `clip~2`)."""
    parents = [posixpath.dirname(_where(a).rstrip("/")) or "/" for a in arguments]
    top = posixpath.commonpath(parents) if parents else "/"
    names = [posixpath.relpath(_where(f), top) for f in files]
    stems = [posixpath.splitext(n)[0] for n in names]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem.casefold()] = counts.get(stem.casefold(), 0) + 1
    chosen = [s if counts[s.casefold()] == 1 else n for s, n in zip(stems, names, strict=True)]
    taken: set[str] = set()
    unique = []
    for name, stem in zip(chosen, stems, strict=True):
        candidate, k = name, 1
        while candidate.casefold() in taken:  # the same but for case: a number on the stem
            k += 1
            candidate = f"{stem}~{k}"
        taken.add(candidate.casefold())
        unique.append(candidate)
    return unique


def fingerprint_of(predictor) -> str:
    """A model's identity for a --resume: what it predicts on fixed noise, whatever it is (a
    run, an ONNX file, an average, an object in Python); with the package's version."""
    import numpy as np

    faces = np.random.default_rng(0).random((2, 96, 96, 1), dtype=np.float32)
    points, seen = predictor.predict_scored(faces, tta=False)
    digest = hashlib.sha256(f"facekeypoints {metadata.version('facekeypoints')}\n"
                            f"{type(predictor).__name__} {predictor.columns}\n".encode())
    digest.update(np.round(np.asarray(points, np.float64), 4).tobytes())
    digest.update(np.asarray(seen, bool).tobytes())
    return digest.hexdigest()[:16]


def _option(key: str, value) -> str:
    """A setting as the command line says it (`--fast`, `no --max-faces`, `--detector hog`)."""
    flag = {"draw": "--no-draw", "smooth": "--no-smooth"}.get(key)
    if flag:  # set by leaving the flag out
        return f"no {flag}" if value else flag
    option = f"--{key.replace('_', '-')}"
    if value is None or value is False:
        return f"no {option}"
    return option if value is True else f"{option} {value}"


def is_video(file: str) -> bool:
    return Path(file.split("?")[0]).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class Manifest:
    inputs: list[dict]  # file, size, mtime_ns, out (the output name)
    problems: list[str]
    tasks: list[list[int]]
    model: str
    fingerprint: str
    settings: dict
    format: int = FORMAT

    @classmethod
    def plan(cls, entries: list[dict], problems: list[str], arguments: list[str], model: str,
             fingerprint: str, settings: dict, workers: int = 1,
             part_size: int | None = None) -> Manifest:
        """Each video is a task of its own (cutting one would change its tracking); photos go
        in runs of `part_size`, by default enough parts for four per worker, at most 64."""
        found = [a for a in arguments if "://" in a or os.path.exists(a)]  # not a mistyped one
        names = output_names([e["file"] for e in entries], found)
        inputs = [{**e, "out": n} for e, n in zip(entries, names, strict=True)]
        photos = [i for i, e in enumerate(inputs) if not is_video(e["file"])]
        size = part_size or max(1, min(PHOTOS_PER_PART, math.ceil(len(photos) / (4 * workers))))
        tasks = [[i] for i, e in enumerate(inputs) if is_video(e["file"])]
        tasks += [photos[i:i + size] for i in range(0, len(photos), size)]
        tasks.sort(key=lambda t: t[0])
        return cls(inputs, problems, tasks, model, fingerprint, settings)

    @classmethod
    def read(cls, store) -> Manifest:
        data = json.loads(store.read_bytes(MANIFEST))
        if data.get("format") != FORMAT:
            raise UserError(f"--resume: {store.location} holds a job of an older version of "
                            "facekeypoints; run it again into another --out")
        return cls(**data)

    def create(self, store) -> None:
        """Written once, before any work; refused where another job just wrote one."""
        try:
            store.create(MANIFEST, (json.dumps(asdict(self), indent=1) + "\n").encode())
        except FileExistsError:
            raise UserError(f"{store.location}: another detect job began in this folder just "
                            f"now ({MANIFEST}); choose another --out, or --resume it once it "
                            "stops") from None

    def begin(self, store, resume: bool) -> Manifest:
        """The plan to follow: this one, created in `store`, or with `resume` the job's own
        there, once checked to be this one's."""
        if not resume:
            self.create(store)
            return self
        job = Manifest.read(store)
        job.check_resumes(self, store.location)
        # each input is read where this command names it (another folder, another spelling),
        # and keeps the name the job gave it
        here = {_where(e["file"]): e["file"] for e in self.inputs}
        for entry in job.inputs:
            entry["read"] = here[_where(entry["file"])]
        return job

    def check_resumes(self, now: Manifest, out: str) -> None:
        """`now` (this command's plan) must be the job's: the same inputs, model and settings."""
        for key, value in self.settings.items():
            if now.settings.get(key) != value:
                raise UserError(f"--resume: {out} was begun with {_option(key, value)}, not "
                                f"{_option(key, now.settings.get(key))}; use the same options "
                                "or another --out")
        if now.fingerprint != self.fingerprint:
            raise UserError(f"--resume: {out} was begun with MODEL {self.model} "
                            f"(fingerprint {self.fingerprint}); this model differs "
                            f"({now.fingerprint}), or runs on another runtime (LiteRT or ONNX "
                            f"Runtime: FACEKEYPOINTS_RUNTIME); use the same model and runtime "
                            f"or another --out")
        # the same files, however they are spelled (relative or absolute, from another folder)
        was = {_where(e["file"]): e for e in self.inputs}
        for entry in now.inputs:
            before = was.pop(_where(entry["file"]), None)
            if before is None:
                raise UserError(f"--resume: {entry['file']} is not among the job's inputs in "
                                f"{out}; use the same inputs or another --out")
            if (before["size"], before["mtime_ns"]) != (entry["size"], entry["mtime_ns"]):
                raise UserError(f"--resume: {entry['file']} changed since the job began (size "
                                "or modification time); use another --out")
        if was:
            raise UserError(f"--resume: {next(iter(was.values()))['file']} is among the job's "
                            f"inputs in {out} but not this command's; use the same inputs or "
                            "another --out")
