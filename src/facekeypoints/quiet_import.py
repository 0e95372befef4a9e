"""Keras and TensorFlow imported without their start-up chatter (the C++ banner, oneDNN notes,
retracing warnings): not for the person running a command or a notebook."""

from __future__ import annotations

import logging
import os
import sys
import tempfile


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
