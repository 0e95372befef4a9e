"""Where a batch job reads and writes: a local folder, or any URL pyarrow's file systems open
(s3://, gs://, abfs://, hdfs://, file://). Writes are whole or absent: a temporary file renamed
into place on a disk; on object storage one upload, which appears complete or not at all."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import UserError
from ..files import atomic_write
from ..photos.reading import PHOTO_SUFFIXES, VIDEO_SUFFIXES, expand_inputs


def is_url(location: str | Path) -> bool:
    return "://" in str(location)


def filesystem(url: str):
    """(pyarrow file system, path in it) for a URL; a one-line error where it cannot open."""
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(url)
    except (OSError, ValueError) as e:
        raise UserError(f"{url}: cannot open this location ({e})") from None


class Store:
    """A folder of outputs; `local` is its path where it is on this machine's disk."""

    def __init__(self, location: str | Path):
        self.location = str(location)
        if is_url(location):
            self.fs, root = filesystem(self.location)
        else:
            from pyarrow import fs

            self.fs, root = fs.LocalFileSystem(), str(Path(location).absolute())
        self.root = root.rstrip("/")
        self.local = Path(self.root) if type(self.fs).__name__ == "LocalFileSystem" else None

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

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
        if self.local is not None:
            atomic_write(self.local / name, lambda tmp: tmp.write_bytes(data))
            return
        self.fs.create_dir(self.path(name).rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(self.path(name)) as f:
            f.write(data)

    def upload(self, folder: Path) -> None:
        """Every file under a local staging `folder`, to the same names here."""
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.write_bytes(path.relative_to(folder).as_posix(), path.read_bytes())


def list_inputs(inputs: list[str]) -> tuple[list[dict], list[str]]:
    """What `detect` would read, in its order, each with its size and modification time (the
    manifest's record of them); local files and folders as `detect` lists them, URLs through
    their file system. Also the problems (`detect` names them as skipped)."""
    entries, problems = [], []
    for item in inputs:
        if is_url(item):
            found, problem = _list_url(item)
            entries += found
            problems += problem
            continue
        files, problem = expand_inputs([item])
        problems += problem
        for path in files:
            stat = path.stat()
            entries.append({"file": str(path), "size": stat.st_size,
                            "mtime_ns": stat.st_mtime_ns})
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
        infos = sorted((i for i in filesystem_.get_file_info(fs.FileSelector(path))
                        if i.type == fs.FileType.File
                        and os.path.splitext(i.path)[1].lower() in PHOTO_SUFFIXES
                        | VIDEO_SUFFIXES), key=lambda i: i.path)
        if not infos:
            return [], [f"{url}: folder holds no photos or videos"]
    return [{"file": f"{parts.scheme}://{i.path}{query}", "size": i.size,
             "mtime_ns": i.mtime_ns or 0} for i in infos], []
