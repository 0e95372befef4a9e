"""Keypoints out of the box: the built-in model (the face mesh with heads fitted on the shared
faces, shipped in the package) works with no model given, without TensorFlow, and is what its
NOTICE says it is: the shipped heads are reproduced by the command the NOTICE names."""

import importlib.util
import json
import subprocess
import sys

import numpy as np

import facekeypoints as fk
from facekeypoints.inference.loading import builtin_path

from .conftest import ROOT, SHARED

PHOTO = SHARED / "photos" / "youtube" / "Lincoln_Chafee_52.jpg"


def test_the_builtin_model_ships_with_its_notice_and_loads_without_tensorflow():
    folder = builtin_path()
    notice = (folder / "NOTICE").read_text()
    assert "udacity/P1_Facial_Keypoints" in notice and "tools/make_builtin_model.py" in notice
    assert sum(p.stat().st_size for p in folder.iterdir()) < 400_000  # heads of kilobytes
    code = ("import sys, facekeypoints as fk; faces = fk.detect(sys.argv[1]); "
            "print(len(faces), type(fk.load_model()).__name__, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(PHOTO)], capture_output=True,
                          text=True, timeout=300)
    assert done.stdout.split() == ["1", "MeshPredictor", "False"], done.stderr[-2000:]


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
        assert health["model_path"] == str(builtin_path())
        served = client.post("/api/keypoints", files={"image": ("a.jpg", PHOTO.read_bytes())})
    assert served.status_code == 200
    ours = np.array(list(served.json()["faces"][0]["keypoints"].values()))
    np.testing.assert_allclose(ours, np.array(list(record["faces"][0]["keypoints"].values())),
                               atol=0.02)


def test_the_shipped_heads_are_what_the_notice_command_fits(tmp_path, shared_faces):
    spec = importlib.util.spec_from_file_location("make_builtin",
                                                  ROOT / "tools" / "make_builtin_model.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    refit = tool.fit(shared_faces / "training.csv.gz", tmp_path / "refit")
    tool.shrink(refit, tmp_path / "shipped-again")
    X, _ = fk.load(shared_faces / "test.csv.gz")
    shipped, again = fk.load_model(), fk.load_model(tmp_path / "shipped-again")
    for a, b in [(shipped, again), (shipped.for_photos(), again.for_photos())]:
        np.testing.assert_allclose(a.predict(X[:64]), b.predict(X[:64]), atol=2e-3)
    # the keypoints above are what must agree: the heads' own numbers follow the mesh's points,
    # which each ONNX Runtime release rounds a little differently (1.32 moved ridge weights by
    # 4.8e-4 of 0.2 and the keypoints by under 1e-3 px), and LiteRT too (heads refitted on its
    # points, the shipped ones on ONNX Runtime's: 1.5e-3 px), so they are compared in form only
    for name in ("head.npz", "photo_head.npz"):
        with np.load(builtin_path() / name) as ours, np.load(tmp_path / "shipped-again" / name) \
                as theirs:
            assert sorted(ours.files) == sorted(theirs.files)
            assert all(ours[key].shape == theirs[key].shape for key in ours.files)


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


def test_serve_health_and_the_page_call_the_builtin_models_built_in(tmp_path):
    """Not the class that loads them ("MeshPredictor"): a user who gave no model sees the
    package's own."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
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
