"""The one opener (`onnx_runtime.session`): a model `X.onnx` with a sibling `X.tflite` runs on
LiteRT where `ai_edge_litert` imports, else (or with FACEKEYPOINTS_RUNTIME=onnx) on ONNX
Runtime, and both give the same numbers: each model's outputs on real photos, and the whole
pipeline's boxes and points."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from facekeypoints import onnx_runtime
from facekeypoints.errors import UserError
from facekeypoints.photos import read_photo

from .conftest import ROOT, SHARED

PRETRAINED = ROOT / "src" / "facekeypoints" / "pretrained"
MODELS = {"face_mesh.onnx": 192, "blazeface_short.onnx": 128, "blazeface_full.onnx": 192,
          "iris_landmark.onnx": 64}
CROPS = {"face_mesh.onnx", "iris_landmark.onnx"}  # take crops in [0, 1], not whole photos
PHOTOS = sorted((SHARED / "photos" / "youtube").glob("*.jpg"))[::60] \
    + sorted((SHARED / "photos" / "dlib").glob("*.jpg"))[:3]


def _real_inputs(side: int, mesh: bool) -> np.ndarray:
    """Eight youtube photos as the model takes them: the mesh's centre crops in [0, 1],
    BlazeFace's whole photos in [-1, 1]."""
    out = []
    for path in sorted((SHARED / "photos" / "youtube").glob("*.jpg"))[::50][:8]:
        rgb = read_photo(path)
        h, w = rgb.shape[:2]
        s = min(h, w) // 2
        image = rgb[h // 2 - s // 2:h // 2 + s // 2, w // 2 - s // 2:w // 2 + s // 2] if mesh \
            else rgb
        image = cv2.resize(image, (side, side)).astype(np.float32)
        out.append(image / 255 if mesh else image / 127.5 - 1)
    return np.stack(out)


def test_every_shipped_tflite_is_the_file_its_notice_names_beside_its_onnx():
    notice = " ".join((PRETRAINED / "NOTICE").read_text().split())
    for onnx in MODELS:
        tflite = (PRETRAINED / onnx).with_suffix(".tflite")
        digest = hashlib.sha256(tflite.read_bytes()).hexdigest()
        assert digest in notice, tflite.name  # the file NOTICE names, byte for byte


@pytest.mark.parametrize("name", MODELS)
def test_litert_and_onnx_runtime_give_the_same_outputs_on_real_photos(name):
    path = PRETRAINED / name
    litert, onnx = onnx_runtime.LiteRTSession(path.with_suffix(".tflite"), path), \
        onnx_runtime.onnx_session(path)
    assert [t.name for t in litert.get_inputs()] == [t.name for t in onnx.get_inputs()]
    assert [t.name for t in litert.get_outputs()] == [t.name for t in onnx.get_outputs()]
    X = _real_inputs(MODELS[name], name in CROPS)
    feed = onnx.get_inputs()[0].name
    for batch in (1, 2, 8, 3):  # the mesh takes a batch; BlazeFace's fixed reshapes do not
        want = onnx.run(None, {feed: X[:batch]})
        got = litert.run(None, {feed: X[:batch]})
        for w, g in zip(want, got, strict=True):
            assert g.shape == w.shape
            # the points and boxes in the model's own pixels (192, 128 or 64 a side), its logits
            assert np.abs(g - w).max() < 1e-3, (name, batch)
        assert np.std(want[0]) > 1  # real outputs, not zeros on both sides
    (second,) = litert.run([onnx.get_outputs()[1].name], {feed: X[:2]})
    np.testing.assert_array_equal(second, litert.run(None, {feed: X[:2]})[1])


def test_the_opener_takes_litert_only_for_a_model_with_a_tflite_sibling(tmp_path, monkeypatch):
    monkeypatch.delenv(onnx_runtime.RUNTIME, raising=False)
    shipped = PRETRAINED / "builtin" / "model.onnx"
    opened = onnx_runtime.session(shipped)
    assert onnx_runtime.runtime_of(opened) == "litert"
    # the package's metadata lives in the .onnx; the LiteRT session reads it there
    assert opened.get_modelmeta().custom_metadata_map == onnx_runtime.onnx_session(shipped) \
        .get_modelmeta().custom_metadata_map
    own = tmp_path / "export.onnx"  # a user's own export: no sibling
    shutil.copy(PRETRAINED / "face_mesh.onnx", own)
    assert onnx_runtime.runtime_of(onnx_runtime.session(own)) == "onnx"
    # nor a .tflite that happens to share its stem: another net's numbers under its name
    shutil.copy(PRETRAINED / "builtin" / "model.tflite", tmp_path / "export.tflite")
    assert onnx_runtime.runtime_of(onnx_runtime.session(own)) == "onnx"
    monkeypatch.setenv(onnx_runtime.RUNTIME, "onnx")
    assert onnx_runtime.runtime_of(onnx_runtime.session(own)) == "onnx"
    monkeypatch.setenv(onnx_runtime.RUNTIME, "tpu")
    with pytest.raises(UserError, match="FACEKEYPOINTS_RUNTIME=tpu: expected one of onnx"):
        onnx_runtime.session(own)


def test_litert_takes_the_thread_count_of_this_process(monkeypatch):
    path = PRETRAINED / "blazeface_short.onnx"
    monkeypatch.setenv(onnx_runtime.THREADS, "1")
    assert onnx_runtime.LiteRTSession(path.with_suffix(".tflite"), path).threads == 1
    monkeypatch.delenv(onnx_runtime.THREADS)
    assert onnx_runtime.LiteRTSession(path.with_suffix(".tflite"), path).threads \
        == len(os.sched_getaffinity(0))


NO_LITERT = """
import sys

class NoLiteRT:  # as where ai-edge-litert has no wheel
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "ai_edge_litert":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoLiteRT())
"""
PIPELINE = """
import json
import facekeypoints as fk
from facekeypoints import onnx_runtime

landmarker = fk.Landmarker()
found = {p: landmarker.detect(p) for p in sys.argv[1:]}
print(json.dumps({"opened": onnx_runtime.OPENED,
                  "found": {p: [r.boxes.tolist(), r.points.tolist()] for p, r in found.items()}}))
"""


def _pipeline(runtime: str | None, litert: bool = True) -> dict:
    env = {k: v for k, v in os.environ.items() if k != onnx_runtime.RUNTIME}
    if runtime:
        env[onnx_runtime.RUNTIME] = runtime
    code = ("import sys\n" if litert else NO_LITERT) + PIPELINE
    done = subprocess.run([sys.executable, "-c", code, *map(str, PHOTOS)], capture_output=True,
                          text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_pipeline_finds_the_same_faces_and_points_on_either_runtime():
    litert, forced, without = _pipeline(None), _pipeline("onnx"), _pipeline(None, litert=False)
    # every model the pipeline opened: BlazeFace's two and the built-in model's
    assert {"blazeface_short.onnx", "blazeface_full.onnx"} <= set(litert["opened"])
    assert set(litert["opened"].values()) == {"litert"}, litert["opened"]
    assert set(forced["opened"].values()) == set(without["opened"].values()) == {"onnx"}
    assert forced["found"] == without["found"]  # ONNX Runtime either way
    faces = 0
    for photo, (boxes, points) in forced["found"].items():
        other_boxes, other_points = litert["found"][photo]
        assert len(boxes) == len(other_boxes), photo
        faces += len(boxes)
        if boxes:
            assert np.abs(np.subtract(boxes, other_boxes)).max() < 1e-3, photo  # photo pixels
            # the keypoints, in photo pixels: the models' 1e-4 px, through the photo head and
            # the crop's scale (a 96 px crop of a face of 100-300 px)
            assert np.abs(np.subtract(points, other_points)).max() < 0.02, photo
    assert faces >= len(PHOTOS)


def test_one_litert_session_serves_several_threads():
    """A server's threads share the process's models; a LiteRT interpreter is not thread-safe,
    so calls take turns and each gets its own batch's outputs."""
    from concurrent.futures import ThreadPoolExecutor

    path = PRETRAINED / "face_mesh.onnx"
    litert = onnx_runtime.LiteRTSession(path.with_suffix(".tflite"), path)
    X = _real_inputs(192, mesh=True)
    feed = litert.get_inputs()[0].name
    alone = [litert.run(None, {feed: X[i:i + 1]})[0] for i in range(len(X))]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda i: litert.run(None, {feed: X[i:i + 1]})[0],
                                 [i for _ in range(5) for i in range(len(X))]))
    for k, got in enumerate(together):
        np.testing.assert_array_equal(got, alone[k % len(X)])


def test_a_litert_session_keeps_a_few_batch_sizes_and_answers_each_right():
    """Interpreters are kept for BATCHES_KEPT batch sizes, the oldest dropped; every one reads
    the tensor indices read once from the first, and a batch size seen again after its
    interpreter was dropped gives the same outputs as ONNX Runtime."""
    path = PRETRAINED / "face_mesh.onnx"
    litert = onnx_runtime.LiteRTSession(path.with_suffix(".tflite"), path)
    reference = onnx_runtime.onnx_session(path)
    X = np.concatenate([_real_inputs(192, mesh=True)] * 2)  # 16 crops
    feed = litert.get_inputs()[0].name
    sizes = [*range(2, 2 + onnx_runtime.BATCHES_KEPT + 3), 2, 3]
    for n in sizes:
        got = litert.run(None, {feed: X[:n]})
        want = reference.run(None, {reference.get_inputs()[0].name: X[:n]})
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape and np.abs(g - w).max() < 2e-3, n
        assert len(litert._by_batch) <= onnx_runtime.BATCHES_KEPT

def test_insisting_on_litert_where_it_is_not_installed_is_one_line(tmp_path):
    from .cli_helpers import one_line_error

    code = NO_LITERT + "from facekeypoints.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code, "detect", str(PHOTOS[0]), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, onnx_runtime.RUNTIME: "litert"})
    one_line_error(done, "FACEKEYPOINTS_RUNTIME=litert", "ai-edge-litert is not installed")
