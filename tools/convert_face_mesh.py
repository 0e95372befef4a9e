"""Convert MediaPipe's face landmark model (468 points) to ONNX and place it in the package.

MediaPipe 0.10.21 is the last release that ships its .tflite models inside the wheel, and it
cannot be installed beside TensorFlow 2.21 (protobuf), so this script only downloads the wheel
(no install), takes `face_landmark.tflite` and its Apache-2.0 licence out of it, converts the
model with tf2onnx, checks the result on ONNX Runtime, and writes
`src/facekeypoints/pretrained/face_mesh.onnx` beside the licence. Run once; the ONNX file is
committed and shipped in the wheel, never downloaded at run time.

    python tools/convert_face_mesh.py [--wheel mediapipe-0.10.21-....whl]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "facekeypoints" / "pretrained"
VERSION = "0.10.21"
MEMBER = "mediapipe/modules/face_landmark/face_landmark.tflite"
LICENCE = f"mediapipe-{VERSION}.dist-info/LICENSE"


def download_wheel(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", f"mediapipe=={VERSION}", "--no-deps",
                    "--only-binary=:all:", "-d", str(folder)], check=True)
    return next(folder.glob("mediapipe-*.whl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a downloaded mediapipe 0.10.21 wheel")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = args.wheel or download_wheel(tmp)
        with zipfile.ZipFile(wheel) as archive:
            tflite = tmp / "face_landmark.tflite"
            tflite.write_bytes(archive.read(MEMBER))
            licence = archive.read(LICENCE).decode()
        onnx_path = tmp / "face_mesh.onnx"
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite),
                        "--opset", "17", "--output", str(onnx_path)], check=True)
        check(onnx_path)
        TARGET.mkdir(parents=True, exist_ok=True)
        (TARGET / "face_mesh.onnx").write_bytes(onnx_path.read_bytes())
        (TARGET / "LICENSE-mediapipe").write_text(licence)
        digest = hashlib.sha256(tflite.read_bytes()).hexdigest()
    print(f"wrote {TARGET / 'face_mesh.onnx'} (from {MEMBER} in {wheel.name}, "
          f"sha256 {digest}) and LICENSE-mediapipe")


def check(path: Path) -> None:
    """The converted model runs: 192x192 RGB in, 468 (x, y, z) points and a face score out."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (points, score) = session.run(None, {session.get_inputs()[0].name:
                                         np.zeros((1, 192, 192, 3), np.float32)})
    assert points.size == 468 * 3 and score.size == 1, (points.shape, score.shape)


if __name__ == "__main__":
    main()
