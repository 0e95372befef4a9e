"""Keypoints out of the box: the built-in model (MediaPipe's face mesh fine-tuned on the shared
faces, shipped in the package as ONNX and LiteRT files) works with no model given, without
TensorFlow, and is what its NOTICE says it is: the files it records, scoring what it records,
made by the command it names."""

import hashlib
import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import facekeypoints as fk
from facekeypoints.inference.loading import builtin_path
from facekeypoints.keypoints import COLUMNS

from .conftest import ROOT, SHARED

PHOTO = SHARED / "photos" / "youtube" / "Lincoln_Chafee_52.jpg"


def test_the_builtin_model_ships_with_its_notice_and_loads_without_tensorflow():
    folder = builtin_path()
    notice = (folder / "NOTICE").read_text()
    for words in ("udacity/P1_Facial_Keypoints", "python tools/make_builtin_model.py\n",
                  "Apache License 2.0", "fine-tuned", "Your own labels"):
        assert words in notice, words
    assert sum(p.stat().st_size for p in folder.iterdir()) < 6_000_000  # two float32 nets
    code = ("import sys, facekeypoints as fk; faces = fk.detect(sys.argv[1]); "
            "print(len(faces), type(fk.load_model()).__name__, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(PHOTO)], capture_output=True,
                          text=True, timeout=300)
    assert done.stdout.split() == ["1", "OnnxPredictor", "False"], done.stderr[-2000:]


def test_detect_and_serve_work_with_no_model_given(tmp_path):
    from fastapi.testclient import TestClient

    from facekeypoints.serve.app import create_app

    done = subprocess.run([sys.executable, "-m", "facekeypoints.cli", "detect", str(PHOTO),
                           "--out", str(tmp_path / "out"), "--no-draw"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "out" / "keypoints.json").read_text())[0]
    assert len(record["faces"]) == 1
    with TestClient(create_app(None, page=False)) as client:
        health = client.get("/api/health").json()
        assert health["model_kind"] == "built-in"  # not the class that happens to load it
        assert health["model_path"] is None  # no path of the server's goes out
        served = client.post("/api/keypoints", files={"image": ("a.jpg", PHOTO.read_bytes())})
    assert served.status_code == 200
    ours = np.array(list(served.json()["faces"][0]["keypoints"].values()))
    np.testing.assert_allclose(ours, np.array(list(record["faces"][0]["keypoints"].values())),
                               atol=0.02)


def _tool():
    spec = importlib.util.spec_from_file_location("make_builtin",
                                                  ROOT / "tools" / "make_builtin_model.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _recorded(folder) -> tuple[dict[str, str], float]:
    """The sha256 of each file and the test-face RMSE that a built-in folder's NOTICE records."""
    notice = (folder / "NOTICE").read_text()
    digests = dict(reversed(line.split()) for line in notice.split("sha256:\n")[1].split("\n\n")[0]
                   .splitlines())
    return digests, float(re.search(r"RMSE ([0-9.]+) px", notice).group(1))


def _check_folder(folder, tool) -> float:
    """The files in `folder` are those its NOTICE records, and score what it records."""
    digests, rmse = _recorded(folder)
    assert sorted(digests) == sorted(tool.SHIPPED)
    for name, digest in digests.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    measured = tool.test_rmse(folder / "model.onnx")
    assert abs(measured - rmse) <= 1e-3, (measured, rmse)
    return measured


def test_the_shipped_model_is_the_file_its_notice_records_and_scores_what_it_records():
    """The shipped tuned meshes (tools/make_builtin_model.py; not refitted here: seven minutes
    and more) are byte for byte what their NOTICEs record and score their recorded RMSE on the
    shared test faces; the built-in model's LiteRT twin gives the ONNX file's numbers."""
    tool = _tool()
    for name in ("builtin", "builtin68"):
        _check_folder(builtin_path(name), tool)
    pytest.importorskip("ai_edge_litert")
    from facekeypoints.data.kaggle import load_test

    faces = load_test(SHARED / "faces" / "test.csv.gz")[1][:32]
    gap = tool.litert_gap_px(builtin_path(), faces)
    assert gap["points"] <= 1e-3 and gap["keypoints"] <= 5e-3, gap


def test_the_shipped_nets_take_faces_framed_outside_the_graph_as_mediapipes_mesh_does():
    """The tuned nets are exported after their framing layer (mesh.net.unframed): the package
    frames each face with OpenCV (mesh.backbone.frame) before the net, on either runtime, and
    the net on faces framed by hand gives what the package gives on the 96x96 faces."""
    from facekeypoints.data.kaggle import load_test
    from facekeypoints.mesh.backbone import FRAMED

    for name in ("builtin", "builtin68"):
        model = fk.load_model(name)
        assert model.framed and model.session.get_inputs()[0].shape[1:] == [192, 192, 3]
        meta = model.session.get_modelmeta().custom_metadata_map
        assert meta["facekeypoints.input"] == FRAMED
    faces = load_test(SHARED / "faces" / "test.csv.gz")[1][:8]
    model = fk.load_model("builtin")
    raw = model.session.run(None, {model.input_name: _frame(faces)})
    np.testing.assert_allclose(model.run(faces)[0], raw[0], atol=1e-6)


def test_a_copy_that_lost_its_metadata_is_framed_by_its_input_and_odd_inputs_are_refused(
        tmp_path):
    """A built-in file re-saved without its metadata still gets framed faces (its input's shape
    says so), and predicts what the shipped file does; a net that takes neither 96x96 grey nor
    192x192 framed faces is refused in one line."""
    import onnx

    from facekeypoints.data.kaggle import load_test
    from facekeypoints.errors import UserError

    model = onnx.load(str(builtin_path() / "model.onnx"))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    bare = fk.load_model(tmp_path / "bare.onnx")
    faces = load_test(SHARED / "faces" / "test.csv.gz")[1][:4]
    assert bare.framed
    np.testing.assert_allclose(bare.run(faces)[0], fk.load_model("builtin").run(faces)[0],
                               atol=1e-2)  # ONNX Runtime against the shipped LiteRT twin
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 128
    onnx.save(model, str(tmp_path / "odd.onnx"))
    with pytest.raises(UserError, match=r"odd.onnx: takes images of shape \[128, 192, 3\]"):
        fk.load_model(tmp_path / "odd.onnx")


def test_the_shipped_litert_nets_hold_mediapipes_layers_and_the_head_and_no_framing():
    """Without the framing's 40 shape ops (TILE, RESIZE_BILINEAR, CONCATENATION, ...), LiteRT
    runs the tuned net as fast as MediaPipe's own file (docs/photos.md); with them it took
    1.6 times as long."""
    pytest.importorskip("ai_edge_litert")  # the ONNX Runtime path is tested above
    from ai_edge_litert.interpreter import Interpreter

    mediapipe = Interpreter(model_path=str(builtin_path().parent / "face_mesh.tflite"))
    allowed = {op["op_name"] for op in mediapipe._get_ops_details()} - {"DEQUANTIZE"}
    head = {"RESHAPE", "STRIDED_SLICE", "MUL", "SUB", "FULLY_CONNECTED"}  # points, dense head
    for name in ("builtin", "builtin68"):
        tflite = Interpreter(model_path=str(builtin_path(name) / "model.tflite"))
        assert list(tflite.get_input_details()[0]["shape"][1:]) == [192, 192, 3]
        ops = {op["op_name"] for op in tflite._get_ops_details()}
        assert ops <= allowed | head, ops - allowed - head


def _frame(faces: np.ndarray) -> np.ndarray:
    """The mesh's framing written out once more, by hand: a 24-pixel replicated border, 192x192
    bilinear, grey in three channels."""
    import cv2

    out = []
    for face in faces[..., 0]:
        padded = np.pad(face, 24, mode="edge")
        out.append(np.repeat(cv2.resize(padded, (192, 192))[..., None], 3, axis=2))
    return np.stack(out).astype(np.float32)


def test_the_tool_fits_exports_and_records_a_model(tmp_path, monkeypatch):
    """What made the shipped model, on 32 faces for one epoch: a run folder, the two files,
    and a NOTICE whose digests and score are those of the files it wrote. The tool's command
    line runs in this process (its `main`, arguments parsed as given): a fresh interpreter
    would import TensorFlow again, and the process around it is not what is tested."""
    pytest.importorskip("ai_edge_litert")
    tool = _tool()
    monkeypatch.setattr(sys, "argv", [
        "make_builtin_model.py", "--epochs", "1", "--limit", "32", "--run",
        str(tmp_path / "run"), "--out", str(tmp_path / "made")])
    try:
        tool.main()
    except SystemExit as e:  # the tool's own refusals (e.g. LiteRT and ONNX disagree)
        pytest.fail(f"the tool stopped: {e}")
    assert sorted(p.name for p in (tmp_path / "made").iterdir()) == ["NOTICE", *tool.SHIPPED]
    assert len(pd.read_csv(tmp_path / "run" / "history.csv")) == 1
    notice = (tmp_path / "made" / "NOTICE").read_text()
    assert "--epochs 1 --limit 32" in notice and "first 32 rows" in notice
    assert _check_folder(tmp_path / "made", tool) > 1.0  # 32 faces, one epoch: far from done
    model = fk.load_model(tmp_path / "made" / "model.onnx")
    assert model.photo_head is not None and model.columns == list(COLUMNS)


def test_what_blazeface_takes_for_a_face_and_the_mesh_does_not_is_dropped():
    """In this photo BlazeFace also finds a logo; the mesh, shown it, says there is no face
    (its face score), and the built-in pipeline returns the one true face."""
    from facekeypoints.photos import FacePipeline, read_photo
    from facekeypoints.photos.detectors import find_faces
    from facekeypoints.photos.scores import load_truth, match

    name = "Kirk_Ferentz_22.jpg"
    rgb = read_photo(PHOTO.parent / name)
    truth = [t for t in load_truth(PHOTO.parent / "keypoints15.csv") if t.file == name]
    pipeline = FacePipeline(fk.load_model())
    assert len(find_faces(pipeline.detector, rgb)) == 2
    faces = pipeline.faces_in(rgb)
    assert len(faces) == 1 and match(truth, [faces[0].box]) == [0]


def test_serve_health_and_the_page_call_the_builtin_models_built_in(tmp_path, monkeypatch):
    """Not the class that loads them ("MeshPredictor"): a user who gave no model sees the
    package's own."""
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    # build_page points Gradio's folder at this server's; put it back for the tests after
    # (a server started from this process would otherwise take this test's folder for it)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "restored"))
    from facekeypoints.serve.page import build_page
    from facekeypoints.serve.service import KeypointService

    for model, points in [(None, "Kaggle's 15 keypoints"), ("builtin68", "iBUG's 68 points")]:
        service = KeypointService(model)
        health = service.health()
        assert health["model_kind"] == "built-in", model
        texts = [b.value for b in build_page(service, tmp_path).blocks.values()
                 if type(b).__name__ == "Markdown" and isinstance(b.value, str)]
        header = next(t for t in texts if t.startswith("# facekeypoints"))
        assert f"Model `{health['model']}` (built-in: {points})" in header, header
        assert "Predictor" not in header


def test_the_15_derived_from_faces68_are_the_kaggle_files_labels_and_fill_every_row(tmp_path):
    """What `builtin` learns: faces68's points as Kaggle's 15, equal to faces/training.csv.gz
    wherever that file has a label, and present where it masks one."""
    from facekeypoints.data.kaggle import write_kaggle15

    out = write_kaggle15(SHARED / "faces68" / "training.csv.gz", tmp_path / "training.csv",
                         SHARED / "faces" / "training_sources.csv", limit=200)
    ours = fk.load(out, dropna=False)[1]
    first = tmp_path / "kaggle" / "training.csv"  # its first 200 rows: the rest is not compared
    first.parent.mkdir()
    pd.read_csv(SHARED / "faces" / "training.csv.gz", nrows=200).to_csv(first, index=False)
    kaggle = fk.load(first, dropna=False)[1]
    assert ours.shape == kaggle.shape == (200, 30) and not np.isnan(ours).any()
    assert np.isnan(kaggle).any()  # Kaggle's pattern: most rows lack most keypoints
    labelled = ~np.isnan(kaggle)
    np.testing.assert_allclose(ours[labelled] * 48, kaggle[labelled] * 48, atol=1e-3)
    assert len(pd.read_csv(tmp_path / "training_sources.csv")) == 200
