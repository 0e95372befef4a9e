"""The run folder: what every kind of run (a net, a group of specialists, the mesh's heads)
leaves on disk, and the one owner of its lifecycle. Training writes it, inference reads it; it
sits below both (`stored`).

    RunFolder.claim(path)          a new run: the folder must be empty or not exist yet
    RunFolder.claim(path, resume)  an old one: it must hold a run, and not a running one
    with run.held(): ...           the folder is this process's (RunLock) until the block ends
    run.begin(...)                 recipe.toml and data.json written; status "running"
    run.interrupt(...) / finish()  status "interrupted" or "finished", with the summary

`recipe.toml` (resolved), `data.json` (what was trained on and which people were held out),
`history.csv` (one row per epoch), `checkpoint/` (weights, optimiser and early-stopping state;
swapped in atomically), `summary.json` (the status and, once the run stops, its figures),
`model.keras`, `scheme.json` (the labels' landmark scheme), `mirror_axis.json` where the recipe
measured it, and `tensorboard/` when asked for. A group of specialists is a folder with
`specialists.json` and one run folder each.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import numpy as np

from .. import schemes
from ..errors import UserError
from ..files import atomic_write_text
from ..keypoints import MIRROR_X
from ..schemes import Scheme
from . import recipe as recipe_mod
from .recipe import Recipe

HISTORY_FIELDS = ["epoch", "train_loss", "val_loss", "val_rmse", "learning_rate", "momentum",
                  "seconds", "elapsed"]
MANIFEST = "specialists.json"
LOCK, OWNER = ".lock", "owner.json"
# a live run rewrites owner.json this often; one silent for STALE_SECONDS is taken for dead (a
# machine that shares the folder and died, or was cut off: its lock cannot be asked)
BEAT_SECONDS, STALE_SECONDS = 10.0, 60.0


class RunInterrupted(UserError):
    """Ctrl-C or SIGTERM stopped a run after saving it; `resume` is the folder to continue,
    which for a specialist is its group's."""

    def __init__(self, resume: Path, epoch: int | None = None):
        at = f" at epoch {epoch}" if epoch is not None else ""
        super().__init__(f"interrupted{at}; continue with: "
                         f"facekeypoints train --out {resume} --resume")
        self.epoch, self.resume = epoch, resume


class RunFolder:
    """A run folder, read and written. `facekeypoints.Run` (the API's, which `train` returns)
    is this class with the verbs that need the layers above (its trained model, evaluation,
    plots): every name here means the same thing there. Files are `*_file` (Paths); `recipe`,
    `status` and `members` are what the files say."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock: RunLock | None = None  # while this process holds the folder (`held`)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------------------- files

    @property
    def recipe_file(self) -> Path:
        return self.path / "recipe.toml"

    @property
    def data_file(self) -> Path:
        return self.path / "data.json"

    @property
    def history_file(self) -> Path:
        return self.path / "history.csv"

    @property
    def model_file(self) -> Path:
        return self.path / "model.keras"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint"

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.json"

    @property
    def mirror_file(self) -> Path:
        return self.path / "mirror_axis.json"

    @property
    def scheme_file(self) -> Path:
        return self.path / "scheme.json"

    @property
    def is_group(self) -> bool:
        return (self.path / MANIFEST).is_file()

    @property
    def members(self) -> list[Self]:
        """The specialists of a group (in group order, each of this class), or [self] for one
        run."""
        if not self.is_group:
            return [self]
        groups = json.loads((self.path / MANIFEST).read_text())["groups"]
        return [type(self)(self.path / g) for g in groups]

    @property
    def recipe(self) -> Recipe:
        """The run's resolved recipe (recipe.toml), read anew."""
        return self.load_recipe()

    # ------------------------------------------------------------------------- lifecycle

    @classmethod
    def claim(cls, path: str | Path, resume: bool = False) -> RunFolder:
        """The folder a run may write to: for a new run an empty or new one; with `resume`,
        one that holds a run which is not running now. Nothing is written yet."""
        run = cls(Path(path))
        if resume:
            if not run.recipe_file.is_file():
                raise UserError(f"--out {run.path}: no run to resume there (no recipe.toml)")
            busy = [m for m in run.members if m.status == "running"]
            if busy:
                raise UserError(f"--out {run.path}: still running ({busy[0].owner_text()}); "
                                "stop it before resuming"
                                + _TAKE_OVER.replace("RUN", str(run.path)))
        elif run.path.exists() and any(p.name not in (LOCK, OWNER) for p in run.path.iterdir()):
            raise UserError(f"--out {run.path}: folder exists and is not empty; pass --resume "
                            "to continue that run or choose another folder")
        return run

    @classmethod
    def for_training(cls, path: str | Path, recipe: Recipe | None, data_path: str | Path | None,
                     resume: bool) -> tuple[RunFolder, Recipe, str | Path]:
        """`claim`, and what to train: the recipe and data file given for a new run, or for a
        resumed one its own (its data file unless another is given)."""
        run = cls.claim(path, resume)
        if resume:
            return run, run.load_recipe(), data_path or run.data_path()
        if recipe is None or data_path is None:
            raise UserError("train needs a recipe and a data file, or a run folder to resume")
        return run, recipe, data_path

    def begin(self, recipe: Recipe, data_record: dict | None = None,
              scheme: Scheme | None = None) -> None:
        """Write the resolved recipe (and, for a new run, its data record and scheme) and mark
        the run running in this process."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.recipe_file, recipe.to_toml())
        if data_record is not None:
            atomic_write_text(self.data_file, json.dumps(data_record, indent=1))
        if scheme is not None and not self.scheme_file.is_file():
            atomic_write_text(self.scheme_file, json.dumps(schemes.record(scheme), indent=1))
        self._write_summary({"status": "running", "pid": os.getpid(),
                             "host": socket.gethostname(), "started": time.time()})

    @contextlib.contextmanager
    def held(self) -> Iterator[RunLock]:
        """The folder is this process's while the block runs (`RunLock`): a second process,
        here or on a machine sharing the folder, is refused."""
        lock = RunLock.take(self.path)
        self._lock = lock
        try:
            yield lock
        finally:
            self._lock = None
            lock.release()

    def owner(self) -> dict | None:
        """owner.json: the process that holds the folder (host, pid, its last beat)."""
        try:
            return json.loads((self.path / OWNER).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def owner_text(self) -> str:
        owner = self.owner() or self.summary()
        text = f"process {owner.get('pid')} on {owner.get('host')}"
        if "beat" in owner:
            text += f", last heard from {max(0.0, time.time() - owner['beat']):.0f} s ago"
        return text

    def take_over(self) -> None:
        """Forget the holder of a folder whose run is dead but cannot be seen to be (another
        machine's, within STALE_SECONDS of its last beat). A holder alive here is refused."""
        for member in [self, *(self.members if self.is_group else [])]:
            if not member.path.is_dir():
                continue
            with _flocked(member.path) as free:
                if not free:
                    raise UserError(f"--out {member.path}: still running here "
                                    f"({member.owner_text()}); stop it instead of taking over")
                owner = member.owner()
                if owner is not None and owner.get("host") == socket.gethostname() \
                        and _pid_alive(owner.get("pid")):
                    raise UserError(f"--out {member.path}: still running here "
                                    f"({member.owner_text()}); stop it instead of taking over")
                with contextlib.suppress(FileNotFoundError):
                    (member.path / OWNER).rename(member.path / f"{OWNER}.taken-over")

    def interrupt(self, figures: dict) -> None:
        self._write_summary({"status": "interrupted", **figures})

    def finish(self, figures: dict) -> None:
        self._write_summary({"status": "finished", **figures})

    def summary(self) -> dict:
        try:
            return json.loads(self.summary_file.read_text())
        except FileNotFoundError:
            return {}

    @property
    def status(self) -> str:
        """new (nothing yet), running (in a live process), interrupted (stopped, killed or
        never started for a group's member) or finished. A group is finished when every
        member is, running while one is."""
        if self.is_group:
            member_status = [m.status for m in self.members]
            for status in ("running", "interrupted", "new"):
                if status in member_status:
                    return "interrupted" if status == "new" else status
            return "finished"
        summary = self.summary()
        status = summary.get("status")
        if status == "running":  # killed: no chance to say
            owner = self.owner()
            alive = _owner_alive(owner) if owner is not None else _alive(summary)
            return "running" if alive else "interrupted"
        if status in ("interrupted", "finished"):
            return status
        if not self.recipe_file.is_file():
            return "new"
        if not summary:
            return "interrupted"
        # written before runs recorded their status: finished if it stopped by itself
        if summary.get("stopped_early") or summary.get("stopped_at_time_limit"):
            return "finished"
        recipe = self.load_recipe()
        done = recipe.model == "mesh" or summary.get("epoch", 0) >= recipe.epochs
        return "finished" if done else "interrupted"

    def _write_summary(self, summary: dict) -> None:
        atomic_write_text(self.summary_file, json.dumps(summary, indent=1))

    # ------------------------------------------------------------------------- records

    def load_recipe(self) -> Recipe:
        if not self.recipe_file.is_file():
            raise UserError(f"{self.path}: not a run folder (no recipe.toml)")
        return recipe_mod.load(str(self.recipe_file))

    def data_record(self) -> dict:
        """data.json: the data file, the columns, and the people held out."""
        if not self.data_file.is_file():
            raise UserError(f"{self.path}: not a run folder (no data.json)")
        return json.loads(self.data_file.read_text())

    def data_path(self) -> str:
        return self.data_record()["data"]

    def held_out(self) -> tuple | None:
        """Who the run held out, comparable between runs: its people, or for a split by row
        (no people named) the file, split seed and fraction that chose the rows; None for a
        folder that is not a run."""
        if not self.data_file.is_file() or not self.recipe_file.is_file():
            return None
        record = self.data_record()
        if record.get("validation_persons") is not None:
            return ("person", tuple(record["validation_persons"]))
        recipe = self.load_recipe()
        seed = recipe.seed if recipe.split_seed is None else recipe.split_seed
        return ("row", record["data"], seed, recipe.validation,
                record.get("train_rows"), record.get("validation_rows"))

    def own_scheme(self) -> Scheme | None:
        """The scheme to read the run's data file with: its recorded one (a user's own cannot
        be told from the file's header), or None to let the header say."""
        return self.scheme() if self.scheme_file.is_file() else None

    def scheme(self, columns: list[str] | None = None) -> Scheme:
        """The labels' scheme: scheme.json, or for a run from before schemes the built-in one
        its columns belong to (Kaggle's)."""
        if self.scheme_file.is_file():
            return schemes.load(json.loads(self.scheme_file.read_text()))
        return schemes.for_columns(columns or self.load_recipe().columns, str(self.path))

    def mirror_axis(self) -> float | np.ndarray:
        """Where this run's labels mirror (recipe `mirror`): measured, or the pixel-centre axis."""
        if not self.mirror_file.is_file():
            return MIRROR_X
        return np.array(json.loads(self.mirror_file.read_text()))

    def save_mirror_axis(self, axis: np.ndarray) -> None:
        atomic_write_text(self.mirror_file, json.dumps([round(float(a), 4) for a in axis]))

    def read_history(self) -> list[dict[str, float]]:
        if not self.history_file.is_file():
            return []
        with open(self.history_file, newline="") as f:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]

    def append_history(self, row: dict) -> None:
        """One epoch's row, appended (a row is small; a kill loses at most the last one)."""
        new = not self.history_file.exists()
        with open(self.history_file, "a", newline="") as f:
            writer = csv.DictWriter(f, HISTORY_FIELDS, lineterminator="\n")
            if new:
                writer.writeheader()
            writer.writerow({k: _cell(k, row[k]) for k in HISTORY_FIELDS})

    def write_history(self, rows: list[dict]) -> None:
        """The whole history, atomically."""
        lines = [",".join(HISTORY_FIELDS)]
        lines += [",".join(_cell(k, r[k]) for k in HISTORY_FIELDS) for r in rows]
        atomic_write_text(self.history_file, "\n".join(lines) + "\n")

    def truncate_history(self, epoch: int) -> None:
        """Drop rows written after the checkpoint we resume from: one continuous curve."""
        self.write_history([r for r in self.read_history() if r["epoch"] <= epoch])

    def trained_net(self, recipe: Recipe | None = None):
        """The trained Keras net: model.keras, or for a killed run the checkpoint's best or
        last weights."""
        import keras

        from . import nets

        if self.model_file.is_file():
            return keras.models.load_model(self.model_file, compile=False)
        state = self.state()
        if state is None:
            raise UserError(f"{self.path}: the run has no model.keras and no checkpoint yet")
        recipe = recipe or self.load_recipe()
        net = nets.build(recipe, len(recipe.columns))
        folder = Path(state["folder"])
        best = folder / "best.npz"
        net.set_weights(load_arrays(best if best.is_file() else folder / "weights.npz"))
        return net

    # ------------------------------------------------------------------------- checkpoints

    def state(self) -> dict | None:
        """The latest whole checkpoint's state; safe to call while a run is swapping folders."""
        for folder in (self.checkpoint, self.path / "checkpoint.old"):
            try:
                return json.loads((folder / "state.json").read_text()) | {"folder": str(folder)}
            except FileNotFoundError:
                continue
        return None

    def save_checkpoint(self, weights: list[np.ndarray], optimizer: list[np.ndarray],
                        state: dict, best_weights: list[np.ndarray] | None,
                        random: list[np.ndarray] | None = None) -> None:
        """Write the new checkpoint beside the old one, then swap folders: never half one.
        `random`: the train step's random generators, so a resume draws what the run would."""
        if self._lock is not None:
            self._lock.check()
        tmp, old = self.path / "checkpoint.tmp", self.path / "checkpoint.old"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_arrays(tmp / "weights.npz", weights)
        save_arrays(tmp / "optimizer.npz", optimizer)
        if best_weights is not None:
            save_arrays(tmp / "best.npz", best_weights)
        if random:
            save_arrays(tmp / "random.npz", random)
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        shutil.rmtree(old, ignore_errors=True)
        if self.checkpoint.exists():
            self.checkpoint.rename(old)
        tmp.rename(self.checkpoint)
        shutil.rmtree(old, ignore_errors=True)


def data_record(data_path: str | Path, columns: list[str], train_set, val_set) -> dict:
    """What data.json says: the data file, the columns, and the people held out."""
    return {
        "data": str(Path(data_path).resolve()),
        "columns": columns,
        "train_rows": len(train_set),
        "validation_rows": len(val_set),
        "split": train_set.held_out_by,
        "validation_persons": sorted(set(val_set.persons)) if val_set.persons is not None
        else None,
        # whole photos: faces framed by the detector, and those it missed (framed from labels)
        **({"framing": train_set.framing} if train_set.framing else {}),
    }


def _cell(key: str, value) -> str:
    return str(int(value)) if key == "epoch" else f"{value:.6g}"


_TAKE_OVER = (" (if it is dead, on a machine that cannot be asked, continue with: "
              "facekeypoints train --out RUN --resume --take-over)")


class RunLock:
    """A run folder held by one process. Two guards, because a folder may be shared between
    machines: an flock on `.lock` (the kernel's, or NFS's, released when the process dies, so
    a killed run never leaves it stuck), and owner.json, created exclusively (a hard link,
    which file servers make or refuse at once) and rewritten every BEAT_SECONDS, which another
    machine reads where flocks do not reach it. A process that finds another's token in
    owner.json has lost the folder and stops at its next checkpoint."""

    def __init__(self, path: Path, handle, token: str, created: bool):
        self.path, self.handle, self.token, self.created = path, handle, token, created
        self.lost: dict | None = None
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._beating, daemon=True, name="run-lock")
        self._beat.start()

    @classmethod
    def take(cls, path: Path) -> RunLock:
        created = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        handle = open(path / LOCK, "a+")  # noqa: SIM115 - held until release
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise UserError(f"--out {path}: a run is training there "
                            f"({RunFolder(path).owner_text()}); wait for it or stop it") from None
        try:
            token = uuid.uuid4().hex
            while not _create(path / OWNER, _record(token)):
                owner = RunFolder(path).owner()
                if owner is not None and _owner_alive(owner):
                    raise UserError(f"--out {path}: a run is training there "
                                    f"({RunFolder(path).owner_text()})" + _TAKE_OVER.replace(
                                        "RUN", str(path)))
                with contextlib.suppress(FileNotFoundError):  # dead: its record goes
                    (path / OWNER).unlink()
        except BaseException:
            handle.close()
            raise
        return cls(path, handle, token, created)

    def _beating(self) -> None:
        while not self._stop.wait(BEAT_SECONDS):
            owner = RunFolder(self.path).owner()
            if owner is None or owner.get("token") != self.token:
                self.lost = owner or {}
                return
            _write_owner(self.path, _record(self.token))

    def check(self) -> None:
        """Refuse to write where another process took the folder over."""
        if self.lost is not None:
            raise UserError(f"--out {self.path}: taken over by process "
                            f"{self.lost.get('pid')} on {self.lost.get('host')}; this one stops "
                            "without writing")

    def release(self) -> None:
        self._stop.set()
        self._beat.join()
        owner = RunFolder(self.path).owner()
        if owner is not None and owner.get("token") == self.token:
            (self.path / OWNER).unlink(missing_ok=True)
        if not any(p.name != LOCK for p in self.path.iterdir()):
            (self.path / LOCK).unlink(missing_ok=True)  # a run that wrote nothing: no trace
            if self.created:
                with contextlib.suppress(OSError):
                    self.path.rmdir()
        self.handle.close()


def _record(token: str) -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "token": token,
            "beat": time.time()}


def _create(path: Path, record: dict) -> bool:
    """Write `path` whole only where it does not exist yet: a hard link of a complete file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record))
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def _write_owner(path: Path, record: dict) -> None:
    atomic_write_text(path / OWNER, json.dumps(record))


def _owner_alive(owner: dict) -> bool:
    """Whether the process owner.json names still holds its folder: here, by its pid; on
    another machine, by a beat within STALE_SECONDS."""
    if owner.get("host") == socket.gethostname():
        return owner.get("pid") != os.getpid() and _pid_alive(owner.get("pid"))
    return time.time() - float(owner.get("beat", 0)) < STALE_SECONDS


@contextlib.contextmanager
def _flocked(path: Path) -> Iterator[bool]:
    """Whether the folder's flock is free (held for the block where it is)."""
    lock = path / LOCK
    if not lock.exists():
        yield True
        return
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_a_zombie(pid)


def _alive(summary: dict) -> bool:
    """Whether the process that marked a run running still runs. One on another machine (or
    in a container since replaced) cannot be asked: it counts as stopped, so that a folder
    moved after a kill can be resumed."""
    if summary.get("host") != socket.gethostname():
        return False
    pid = summary.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return False  # this process is not in the middle of that run: it stopped, badly
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _not_a_zombie(pid)


def _not_a_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def save_arrays(path: Path, arrays: list[np.ndarray]) -> None:
    np.savez(path, *arrays)


def load_arrays(path: Path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


def free_folder(base: Path) -> Path:
    """`base`, or the first of base-2, base-3, ... that does not exist yet."""
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out
