"""Convert MediaPipe's iris landmark model to ONNX and place it, and the .tflite, in the package.

`iris_landmark.tflite` (Apache-2.0, the same mediapipe 0.10.21 wheel as the face mesh) takes a
64x64 RGB crop of one eye (MediaPipe's subject's-right eye as it stands, the other flipped) in
[0, 1] and gives 71 eye contour and brow points and 5 iris points (the centre first), each
(x, y, z) in the crop's pixels. It converts with tf2onnx as it is; its batch dimension is freed
(both eyes of every face go through in one call) and the ONNX file is checked against the
.tflite (TensorFlow Lite's interpreter, where it imports). Both files are written to
`src/facekeypoints/pretrained/` (the .tflite beside the .onnx: the runtime may run it on LiteRT);
run once, they are committed and shipped in the wheel, never downloaded at run time.

    python tools/convert_iris.py [--wheel mediapipe-0.10.21-....whl | --tflite iris_landmark.tflite]

`--tflite` takes the file from an installed mediapipe 0.10.21
(site-packages/mediapipe/modules/iris_landmark/iris_landmark.tflite) instead of the wheel.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from convert_face_mesh import TARGET, download_wheel, free_batch

MEMBER = "mediapipe/modules/iris_landmark/iris_landmark.tflite"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wheel", type=Path, help="a downloaded mediapipe 0.10.21 wheel")
    source.add_argument("--tflite", type=Path, help="iris_landmark.tflite of mediapipe 0.10.21")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tflite = tmp / "iris_landmark.tflite"
        if args.tflite:
            tflite.write_bytes(args.tflite.read_bytes())
        else:
            with zipfile.ZipFile(args.wheel or download_wheel(tmp)) as archive:
                tflite.write_bytes(archive.read(MEMBER))
        onnx_path = tmp / "iris_landmark.onnx"
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite),
                        "--opset", "17", "--output", str(onnx_path)], check=True)
        free_batch(onnx_path, "eyes")
        check(onnx_path, tflite)
        TARGET.mkdir(parents=True, exist_ok=True)
        for path in (onnx_path, tflite):
            (TARGET / path.name).write_bytes(path.read_bytes())
            print(f"wrote {TARGET / path.name} "
                  f"(sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})")


def check(path: Path, tflite: Path) -> None:
    """64x64 eyes in, 71 + 5 (x, y, z) points each out, in the .tflite's output order; a batch
    gives what each eye gives alone, and what TensorFlow Lite gives (where it imports)."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    eyes = np.random.default_rng(0).uniform(0, 1, (3, 64, 64, 3)).astype(np.float32)
    name = session.get_inputs()[0].name
    contour, iris = session.run(None, {name: eyes})
    assert contour.shape == (3, 213) and iris.shape == (3, 15), (contour.shape, iris.shape)
    alone = session.run(None, {name: eyes[1:2]})[1]
    assert np.abs(iris[1:2] - alone).max() < 1e-3, "a batch changed an eye's points"
    try:
        import tensorflow as tf
    except ImportError:
        return
    interpreter = tf.lite.Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], eyes[:1])
    interpreter.invoke()
    out = {d["name"]: interpreter.get_tensor(d["index"])
           for d in interpreter.get_output_details()}
    assert np.abs(out["output_iris"] - iris[:1]).max() < 1e-2, "ONNX differs from the .tflite"


if __name__ == "__main__":
    main()
