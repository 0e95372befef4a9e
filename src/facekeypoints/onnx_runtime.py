"""The one opener of the package's models: `session(path)` for a file `X.onnx`.

Where `X.tflite` lies beside it (the same network, the same inputs and outputs in the same
order), both shipped in the package's `pretrained/` folder, and `ai_edge_litert` imports, the
model runs on LiteRT with XNNPACK: MediaPipe's face mesh takes 1.7 ms a face there against 5 on
ONNX Runtime on this 2-core CPU (docs/photos.md, "Which runtime"). Otherwise, and for every
`.onnx` of a user's (an export, a copied built-in file), it runs on ONNX Runtime. Both give
the same numbers to about 1e-4 of the model's pixels for MediaPipe's models and 2.4e-3 for the
tuned built-in ones (tests/test_runtime.py, tests/test_builtin.py).
`FACEKEYPOINTS_RUNTIME=onnx` forces ONNX Runtime (`litert` insists on LiteRT).

Both run on the CPU, quiet, with as many threads as this process may use
(`FACEKEYPOINTS_THREADS`; a batch worker sets it to its share of the cores, so that two workers
on two cores do not each start two threads)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

THREADS = "FACEKEYPOINTS_THREADS"
RUNTIME = "FACEKEYPOINTS_RUNTIME"  # "onnx": ONNX Runtime only; "litert": LiteRT or an error
RUNTIMES = ("onnx", "litert")
BATCHES_KEPT = 8  # LiteRT interpreters kept per model, one per batch size seen
OPENED: dict[str, str] = {}  # model file name -> the runtime `session` last chose for it


_SHARED: dict[tuple[str, str | None], Any] = {}


def shared_session(path: str | Path):
    """One session per shipped model (and runtime asked for) in this process: every FaceMesh or
    Irises made shares it, so a model is read and its interpreters built once."""
    key = (str(path), runtime_wanted())
    if key not in _SHARED:
        _SHARED[key] = session(path)
    return _SHARED[key]


def session(path: str | Path, spinning: bool = True):
    """An ONNX Runtime session for `path`, or a `LiteRTSession` standing in for one where a
    `.tflite` sibling exists and LiteRT imports. `spinning=False`: ONNX Runtime's idle threads
    sleep instead of spinning against the next model's."""
    path = Path(path)
    tflite = path.with_suffix(".tflite")
    wanted = runtime_wanted()
    if wanted == "litert" and not litert_available():
        from .errors import UserError

        raise UserError(f"{RUNTIME}=litert, but ai-edge-litert is not installed here (pip "
                        "install ai-edge-litert, where it has a wheel), or unset it")
    if wanted != "onnx" and shipped_twin(path) and (wanted == "litert" or litert_available()):
        try:
            opened = LiteRTSession(tflite, path)
        except Exception as e:  # noqa: BLE001 - a twin LiteRT cannot read is the file's fault
            from .errors import UserError

            raise UserError(f"{tflite}: LiteRT cannot load it ({type(e).__name__}); "
                            f"{RUNTIME}=onnx runs {path.name} on ONNX Runtime") from None
    else:
        opened = onnx_session(path, spinning)
    OPENED[path.name] = runtime_of(opened)
    return opened


def shipped_twin(path: Path) -> bool:
    """Whether `path` is one of the package's own models with its `.tflite` twin beside it: a
    user's `.onnx` never runs a `.tflite` that happens to share its stem (an old export, a
    copied built-in file), which would give another net's numbers under its name."""
    from importlib import resources

    shipped = Path(str(resources.files("facekeypoints") / "pretrained")).resolve()
    path = path.resolve()
    return path.with_suffix(".tflite").is_file() and shipped in path.parents


def runtime_wanted() -> str | None:
    """The runtime `FACEKEYPOINTS_RUNTIME` insists on, or None to take the fastest there is."""
    from .errors import UserError

    value = os.environ.get(RUNTIME, "").strip().lower()
    if value and value not in RUNTIMES:
        raise UserError(f"{RUNTIME}={value}: expected one of {', '.join(RUNTIMES)}, or unset")
    return value or None


def litert_available() -> bool:
    """Whether LiteRT's wheel is installed (it has none for some platforms: see pyproject)."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def runtime_of(opened) -> str:
    """"litert" or "onnx": which runtime `session` chose."""
    return "litert" if isinstance(opened, LiteRTSession) else "onnx"


def threads() -> int:
    """`FACEKEYPOINTS_THREADS`, or 0: the runtime's own choice."""
    value = os.environ.get(THREADS, "").strip()
    if not value:
        return 0
    if not value.isdigit():
        from .errors import UserError

        raise UserError(f"{THREADS}={value}: expected a whole number of threads (0: the "
                        "runtime's own choice), or unset")
    return int(value)


def onnx_session(path: str | Path, spinning: bool = True):
    """The model on ONNX Runtime alone (its sibling `.tflite`, if any, left aside)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads() > 0:
        options.intra_op_num_threads = threads()
        options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Tensor(NamedTuple):
    """An input or output as ONNX Runtime's `get_inputs()` describes it."""

    name: str
    shape: list
    type: str


class LiteRTSession:
    """A `.tflite` model on LiteRT behind the part of ONNX Runtime's session the package uses:
    `run(None, {input: batch})`, `get_inputs()`, `get_outputs()`, `get_modelmeta()`.

    A TFLite model has a batch of one; an interpreter is resized for each batch size seen (kept,
    up to BATCHES_KEPT). Where the model's reshapes fix the batch at one (BlazeFace's: a batch of
    two comes out as one of twice the anchors), the batch runs one image at a time, which costs
    LiteRT next to nothing. An interpreter is not safe across threads: calls take turns."""

    def __init__(self, tflite: Path, onnx: Path) -> None:
        self.path, self.onnx_path = Path(tflite), Path(onnx)
        # read once: an interpreter made later for a new batch size is the same model even if
        # the file has gone or changed since
        self._content = self.path.read_bytes()
        self.threads = threads() or _cores()
        self._lock = threading.Lock()
        self._by_batch: dict[int, Any] = {}
        self._fixed_batch = False
        self._single = self._interpreter(1)
        # the same in every interpreter of this model, whatever its batch: read once (the
        # details cost 0.05 ms a call to read)
        self._source = self._single.get_input_details()[0]["index"]
        self._targets = [o["index"] for o in self._single.get_output_details()]
        self._onnx = None  # opened only if its metadata is asked for

    def _interpreter(self, batch: int):
        """An interpreter for `batch` images, or None where the model cannot take them."""
        from ai_edge_litert.interpreter import Interpreter

        from .quiet_import import stderr_silenced

        with stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            interpreter = Interpreter(model_content=self._content, num_threads=self.threads)
            first = interpreter.get_input_details()[0]
            if batch != first["shape"][0]:
                interpreter.resize_tensor_input(first["index"], [batch, *first["shape"][1:]])
            interpreter.allocate_tensors()
        if any(interpreter.get_tensor(o["index"]).shape[0] != batch
               for o in interpreter.get_output_details()):
            return None
        return interpreter

    def _tensors(self, details: list[dict]) -> list[Tensor]:
        return [Tensor(d["name"], ["batch", *map(int, d["shape"][1:])],
                       f"tensor({np.dtype(d['dtype']).name})") for d in details]

    def get_inputs(self) -> list[Tensor]:
        return self._tensors(self._single.get_input_details())

    def get_outputs(self) -> list[Tensor]:
        return self._tensors(self._single.get_output_details())

    def get_modelmeta(self):
        """The `.onnx`'s metadata (the `.tflite` carries none of the package's), read by ONNX
        Runtime once."""
        if self._onnx is None:
            self._onnx = onnx_session(self.onnx_path, spinning=False)
        return self._onnx.get_modelmeta()

    def run(self, output_names: list[str] | None, feeds: dict[str, np.ndarray]) -> list:
        """ONNX Runtime's `run`: the outputs in the model's order (or those of `output_names`)."""
        (batch,) = feeds.values()
        batch = np.ascontiguousarray(batch, np.float32)
        with self._lock:
            interpreter = self._for_batch(len(batch))
            if interpreter is not None:
                outputs = self._invoke(interpreter, batch)
            else:
                each = [self._invoke(self._single, image[None]) for image in batch]
                outputs = [np.concatenate(parts) for parts in zip(*each, strict=True)]
        if output_names is None:
            return outputs
        names = [t.name for t in self.get_outputs()]
        return [outputs[names.index(n)] for n in output_names]

    def _for_batch(self, n: int):
        """The interpreter for a batch of `n`, or None: one image at a time."""
        if n == 1:
            return self._single
        if self._fixed_batch:  # one batch size failed: they all do (the model's reshapes)
            return None
        if n not in self._by_batch:
            if len(self._by_batch) >= BATCHES_KEPT:
                self._by_batch.pop(next(iter(self._by_batch)))
            self._by_batch[n] = self._interpreter(n)
            self._fixed_batch = self._by_batch[n] is None
        return self._by_batch[n]

    def _invoke(self, interpreter, batch: np.ndarray) -> list[np.ndarray]:
        interpreter.set_tensor(self._source, batch)
        interpreter.invoke()
        return [interpreter.get_tensor(t) for t in self._targets]


def _cores() -> int:
    """The cores this process may use (ONNX Runtime's own default is the same count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
