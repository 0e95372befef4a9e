"""ONNX Runtime sessions, made one way: on the CPU, quiet, and as many threads as this process
may use (`FACEKEYPOINTS_THREADS`; a batch worker sets it to its share of the cores, so that
two workers on two cores do not each start two threads)."""

from __future__ import annotations

import os
from pathlib import Path

THREADS = "FACEKEYPOINTS_THREADS"


def session(path: str | Path, spinning: bool = True):
    """`spinning=False`: idle threads sleep instead of spinning against the next model's."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    threads = int(os.environ.get(THREADS, "0") or 0)
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
