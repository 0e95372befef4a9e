"""Atomic writes: a reader (or a kill) never sees half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[Path], None], suffix: str = "") -> None:
    """Call `write(tmp_path)` on a file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name stays within the file system's 255 bytes, however long `path`'s is
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=suffix or path.suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish(tmp: str | Path, path: str | Path) -> None:
    """A finished temporary file renamed over `path`, with the permissions a new file gets
    (a temporary file is made private)."""
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, newline=""))


def save_model_atomic(model, path: str | Path) -> None:
    atomic_write(path, lambda tmp: model.save(tmp), suffix=".keras")


def save_figure_atomic(figure, path: str | Path, **kwargs) -> None:
    atomic_write(path, lambda tmp: figure.savefig(tmp, format=Path(path).suffix[1:] or "png",
                                                 **kwargs))
