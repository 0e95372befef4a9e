"""Where a batch job reads and writes beyond this disk: any URL pyarrow's file systems open
(s3://, gs://, abfs://, hdfs://, file://). Each write is one upload, which appears complete or
not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

from ..errors import UserError
from ..photos.job import MANIFEST, LocalFolder, list_local
from ..photos.reading import PHOTO_SUFFIXES, VIDEO_SUFFIXES


def is_url(location: str | Path) -> bool:
    return "://" in str(location)


def filesystem(url: str):
    """(pyarrow file system, path in it) for a URL; a one-line error where it cannot open."""
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(url)
    except (OSError, ValueError) as e:
        raise UserError(f"{url}: cannot open this location ({e})") from None


def download(url: str, folder: Path) -> Path:
    """A local copy of `url` in `folder` under its own name (absent where it cannot be read:
    `detect` then says the file is missing)."""
    fs, path = filesystem(url)
    local = folder / path.rsplit("/", 1)[-1]
    try:
        with fs.open_input_stream(path) as source, open(local, "wb") as target:
            shutil.copyfileobj(source, target)
    except OSError:
        local.unlink(missing_ok=True)
    return local


class Store:
    """A job's folder in object storage (a folder on this disk is `photos.job.LocalFolder`):
    the same calls."""

    local = None  # outputs are drawn in a local staging folder, then uploaded

    def __init__(self, location: str):
        self.location = str(location)
        self.fs, root = filesystem(self.location)
        self.root = root.rstrip("/")

    def path(self, name: str) -> str:
        return f"{self.root}/{name}" if name else self.root

    def exists(self, name: str) -> bool:
        from pyarrow import fs

        return self.fs.get_file_info(self.path(name)).type == fs.FileType.File

    def files(self, folder: str) -> list[str]:
        """Names of the files in `folder` (none where it does not exist)."""
        from pyarrow import fs

        infos = self.fs.get_file_info(fs.FileSelector(self.path(folder), allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == fs.FileType.File)

    def read_bytes(self, name: str) -> bytes:
        with self.fs.open_input_stream(self.path(name)) as f:
            return f.read()

    def write_bytes(self, name: str, data: bytes) -> None:
        self.fs.create_dir(self.path(name).rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(self.path(name)) as f:
            f.write(data)

    def create(self, name: str, data: bytes) -> None:
        """`name` written where it does not exist yet: object stores have no exclusive create
        that pyarrow reaches, so a second job that starts in the same instant is not refused."""
        if self.exists(name):
            raise FileExistsError(name)
        self.write_bytes(name, data)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """No lock in object storage (see `create`)."""
        yield

    def upload(self, folder: Path) -> None:
        """Every file under a local staging `folder`, to the same names here."""
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.write_bytes(path.relative_to(folder).as_posix(), path.read_bytes())


def open_store(location: str, resume: bool) -> Store:
    """`photos.job.open_folder`'s checks for a folder in object storage."""
    store = Store(location)
    if store.exists(MANIFEST):
        if not resume:
            raise UserError(f"--out {location}: holds a detect job already ({MANIFEST}); add "
                            "--resume to finish it, or choose another --out")
    elif resume:
        raise UserError(f"--resume: {location} holds no detect job (no {MANIFEST}); drop "
                        "--resume to begin one")
    elif store.files("") or store.files("annotated"):
        raise UserError(f"--out {location}: holds other files; choose a new or empty folder")
    return store


def store_for(location: str | Path):
    """The job's folder as workers write to it: object storage, or this disk."""
    return Store(str(location)) if is_url(location) else LocalFolder(location)


def list_inputs(inputs: list[str], exclude: str | None = None) -> tuple[list[dict], list[str]]:
    """`photos.job.list_local` for inputs that may be URLs: folders in object storage searched
    to any depth too, hidden names skipped."""
    entries, problems, seen = [], [], set()
    for item in inputs:
        found, problem = _list_url(item) if is_url(item) else list_local([item], exclude)
        problems += problem
        for entry in found:  # a file named twice (a folder and a file in it) is read once
            key = entry["file"] if is_url(entry["file"]) else os.path.abspath(entry["file"])
            if key not in seen:
                seen.add(key)
                entries.append(entry)
    return entries, problems


def _list_url(url: str) -> tuple[list[dict], list[str]]:
    from pyarrow import fs

    filesystem_, path = filesystem(url)
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    info = filesystem_.get_file_info(path)
    if info.type == fs.FileType.NotFound:
        return [], [f"{url}: no such file or folder"]
    infos = [info]
    if info.type == fs.FileType.Directory:
        below = filesystem_.get_file_info(fs.FileSelector(path, recursive=True))
        infos = sorted((i for i in below if i.type == fs.FileType.File
                        and not any(part.startswith(".") for part
                                    in i.path[len(path):].split("/"))
                        and os.path.splitext(i.path)[1].lower() in PHOTO_SUFFIXES
                        | VIDEO_SUFFIXES), key=lambda i: i.path.split("/"))
        if not infos:
            return [], [f"{url}: folder holds no photos or videos"]
    # percent-encoded, so that a name with a space, '#' or '?' is read back as itself
    return [{"file": f"{parts.scheme}://{quote(i.path)}{query}", "size": i.size,
             "mtime_ns": i.mtime_ns or 0} for i in infos], []
