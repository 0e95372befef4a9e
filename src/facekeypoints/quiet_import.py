"""Keras and TensorFlow imported without their start-up chatter (the C++ banner, oneDNN notes,
retracing warnings): not for the person running a command or a notebook."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator


def quiet_keras() -> None:
    """Import Keras/TensorFlow with their start-up banner hidden (shown again if import fails)."""
    # TensorFlow's retracing notices (predicting batches of several sizes) are not for users.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if "keras" in sys.modules:
        return
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """File descriptor 2, where C and C++ libraries write, to /dev/null for the block: for
    notices that are not for the person running the command (Ray's start, FFmpeg's codec
    tags)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
