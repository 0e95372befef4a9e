"""Convert MediaPipe's BlazeFace face detectors to ONNX and place them in the package.

The mediapipe 0.10.21 wheel (Apache-2.0, the same source as the face mesh) ships two:
`face_detection_short_range.tflite` (128x128 input, 896 anchors; faces filling much of a selfie)
and `face_detection_full_range_sparse.tflite` (192x192, 2,304 anchors; faces at any distance).
The short range one converts with tf2onnx as it is. The full range one stores its weights sparse,
behind DENSIFY ops that tf2onnx cannot convert: each is folded here into the dense float16
constant it computes (read with TensorFlow Lite's reference kernels: the XNNPACK delegate returned
wrong values for them), which leaves a plain model that converts. Both get a free batch dimension
(tiles of a large photo go through in one call) and are checked against the .tflite on ONNX
Runtime. Writes `src/facekeypoints/pretrained/blazeface_{short,full}.onnx`; run once, the files are
committed and shipped in the wheel, never downloaded at run time.

    python tools/convert_face_detectors.py [--wheel mediapipe-0.10.21-....whl]
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from convert_face_mesh import LICENCE, TARGET, download_wheel, free_batch, wheel_option

MODELS = {"short": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
          "full": "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite"}


def main() -> None:
    given = wheel_option(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = given or download_wheel(tmp)
        with zipfile.ZipFile(wheel) as archive:
            for kind, member in MODELS.items():
                tflite = tmp / Path(member).name
                tflite.write_bytes(archive.read(member))
                dense = densify(tflite, tmp / f"{kind}_dense.tflite")
                onnx_path = tmp / f"blazeface_{kind}.onnx"
                subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(dense),
                                "--opset", "17", "--output", str(onnx_path)], check=True)
                free_batch(onnx_path, "images")
                check(tflite, onnx_path)
                (TARGET / onnx_path.name).write_bytes(onnx_path.read_bytes())
                print(f"wrote {TARGET / onnx_path.name} from {member} in {wheel.name}: sha256 "
                      f"{hashlib.sha256(tflite.read_bytes()).hexdigest()} (.tflite), "
                      f"{hashlib.sha256(onnx_path.read_bytes()).hexdigest()} (.onnx)")
            (TARGET / "LICENSE-mediapipe").write_text(archive.read(LICENCE).decode())


def _interpreter(path: Path, reference: bool = False):
    import tensorflow as tf

    resolver = tf.lite.experimental.OpResolverType
    interpreter = tf.lite.Interpreter(
        model_path=str(path), experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=(resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES if reference
                                       else resolver.AUTO))
    interpreter.allocate_tensors()
    return interpreter


def _run(interpreter, images):
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    return [interpreter.get_tensor(o["index"]).copy() for o in interpreter.get_output_details()]


def densify(path: Path, out: Path) -> Path:
    """The model with every DENSIFY op replaced by the dense constant it outputs (the sparse
    input tensor is pointed at the same dense data, so that no reader meets sparse storage)."""
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    graph = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    densify = schema.BuiltinOperator.DENSIFY
    densifies = [op for op in graph.operators if codes[op.opcodeIndex] == densify]
    if not densifies:
        return path
    interpreter = _interpreter(path, reference=True)
    shape = interpreter.get_input_details()[0]["shape"]
    _run(interpreter, np.zeros(shape, np.float32))
    for op in densifies:
        sparse, dense = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(interpreter.get_tensor(op.outputs[0]).tobytes(), np.uint8)
        model.buffers.append(buffer)
        dense.buffer = sparse.buffer = len(model.buffers) - 1
        sparse.sparsity, sparse.shape = None, dense.shape
    graph.operators = [op for op in graph.operators if op not in densifies]
    flatbuffer_utils.write_model(model, str(out))
    return out


def check(tflite: Path, onnx_path: Path) -> None:
    """The ONNX model gives what the .tflite gives (its reference kernels), and a batch gives
    what each image gives alone."""
    import numpy as np
    import onnxruntime as ort

    interpreter = _interpreter(tflite, reference=True)
    shape = interpreter.get_input_details()[0]["shape"]
    images = np.random.default_rng(0).uniform(-1, 1, (3, *shape[1:])).astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    batch = session.run(None, {name: images})
    for i in range(len(images)):
        expected = _run(interpreter, images[i:i + 1])
        for got, want in zip(batch, expected, strict=True):
            error = np.abs(got[i:i + 1] - want).max()
            assert error < 1e-3 * max(1.0, np.abs(want).max()), (onnx_path.name, error)


if __name__ == "__main__":
    main()
