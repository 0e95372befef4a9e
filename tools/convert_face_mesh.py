"""Convert MediaPipe's face landmark model (468 points) to ONNX and place it in the package.

MediaPipe 0.10.21 is the last release that ships its .tflite models inside the wheel, and it
cannot be installed beside TensorFlow 2.21 (protobuf), so this script only downloads the wheel
(no install), takes `face_landmark.tflite` and its Apache-2.0 licence out of it, converts the
model with tf2onnx, frees its batch dimension (the converted graph fixes it at one face in two
Reshapes; every face of a photo, and their mirror images, then go through in one call), checks
the result on ONNX Runtime, and writes
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


def wheel_option(doc: str) -> Path | None:
    """The --wheel a converter was given (None: download it)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a downloaded mediapipe 0.10.21 wheel")
    return parser.parse_args().wheel


def main() -> None:
    given = wheel_option(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = given or download_wheel(tmp)
        with zipfile.ZipFile(wheel) as archive:
            tflite = tmp / "face_landmark.tflite"
            tflite.write_bytes(archive.read(MEMBER))
            licence = archive.read(LICENCE).decode()
        onnx_path = tmp / "face_mesh.onnx"
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite),
                        "--opset", "17", "--output", str(onnx_path)], check=True)
        free_batch(onnx_path)
        check(onnx_path)
        TARGET.mkdir(parents=True, exist_ok=True)
        (TARGET / "face_mesh.onnx").write_bytes(onnx_path.read_bytes())
        (TARGET / "LICENSE-mediapipe").write_text(licence)
        digest = hashlib.sha256(tflite.read_bytes()).hexdigest()
    print(f"wrote {TARGET / 'face_mesh.onnx'} (from {MEMBER} in {wheel.name}, "
          f"sha256 {digest}) and LICENSE-mediapipe")


def free_batch(path: Path, name: str = "faces") -> None:
    """Input and outputs of any batch size: each Reshape's fixed batch of 1 becomes -1, its other
    sizes those that shape inference gives (a shape such as (1, -1, 16) has no free slot else)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inferred = onnx.shape_inference.infer_shapes(model).graph
    sizes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
             for v in [*inferred.value_info, *inferred.output]}
    initial = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = name
    for node in model.graph.node:
        if node.op_type != "Reshape":
            continue
        shape, known = initial[node.input[1]], sizes[node.output[0]]
        assert shape[0] == 1 and known[0] == 1 and all(known[1:]), (node.name, shape, known)
        node.input[1] = f"{node.output[0]}/free_batch_shape"  # its own: shapes may be shared
        model.graph.initializer.append(numpy_helper.from_array(
            np.array([-1, *known[1:]], shape.dtype), node.input[1]))
    used = {name for node in model.graph.node for name in node.input}
    unused = [init for init in model.graph.initializer if init.name not in used]
    for init in unused:  # the old shapes
        model.graph.initializer.remove(init)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def check(path: Path) -> None:
    """The converted model runs: 192x192 RGB faces in, 468 (x, y, z) points and a face score
    each out, a batch giving what each face gives alone."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    faces = np.random.default_rng(0).uniform(0, 1, (3, 192, 192, 3)).astype(np.float32)
    name = session.get_inputs()[0].name
    points, score = session.run(None, {name: faces})
    assert points.size == 3 * 468 * 3 and score.size == 3, (points.shape, score.shape)
    alone = session.run(None, {name: faces[1:2]})[0]
    assert np.abs(points[1:2] - alone).max() < 1e-3, "a batch changed a face's points"


if __name__ == "__main__":
    main()
