"""The HTTP API of `facekeypoints serve`: the same records as `detect`, a clear 4xx JSON error for
every bad upload (and the server serving on after it), limits, the token, video. Real photos
from ../shared/data, a real trained model, the real app (FastAPI's test client drives it)."""

import io
import json

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facekeypoints.inference import loading
from facekeypoints.photos import pipeline, reading
from facekeypoints.photos.local_job import run_detect
from facekeypoints.serve.app import Limits, create_app
from facekeypoints.serve.service import RequestError

from .conftest import SHARED

GROUP_PHOTO = SHARED / "photos" / "dlib" / "2008_002079.jpg"
FACE_PHOTO = SHARED / "photos" / "youtube" / "Lincoln_Chafee_52.jpg"


@pytest.fixture(scope="module")
def client(tiny_onnx):
    limits = Limits(upload_mb=0.5, max_pixels=2_000_000, video_seconds=2.0, timeout_s=60)
    with TestClient(create_app(str(tiny_onnx), limits=limits, page=False)) as client:
        yield client


def _post(client, data: bytes, name="photo.jpg", field="image", path="/api/keypoints"):
    return client.post(path, files={field: (name, data, "application/octet-stream")})


def _still_serving(client) -> None:
    response = _post(client, FACE_PHOTO.read_bytes())
    assert response.status_code == 200 and len(response.json()["faces"]) == 1


def test_the_api_returns_what_detect_writes_for_the_same_photo(client, tiny_onnx, tmp_path):
    response = _post(client, GROUP_PHOTO.read_bytes(), name=GROUP_PHOTO.name)
    assert response.status_code == 200
    record = response.json()
    run_detect([str(GROUP_PHOTO)], pipeline.FacePipeline(loading.load(tiny_onnx)), tmp_path,
               draw_pictures=False, log=lambda s: None, progress=False)
    (written,) = json.loads((tmp_path / "keypoints.json").read_text())
    assert record["file"] == GROUP_PHOTO.name
    assert (record["width"], record["height"]) == (written["width"], written["height"])
    assert len(record["faces"]) == len(written["faces"]) >= 6
    assert record["faces"] == written["faces"]  # boxes, scores and every keypoint, to the digit
    assert record["seconds"] > 0


def test_health_names_the_model_and_the_onnx_predictor_is_used(client, tiny_onnx):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["model_kind"] == "OnnxPredictor"
    assert health["model_path"] == tiny_onnx.name and len(health["keypoints"]) == 15
    assert health["limits"]["max_pixels"] == 2_000_000
    assert "/api/keypoints" in client.get("/openapi.json").json()["paths"]


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


BAD_UPLOADS = {
    "empty": (lambda: b"", "image", 400, "empty upload"),
    "not an image": (lambda: b"name,value\n1,2\n" * 40, "image", 400, "not an image file"),
    "truncated": (lambda: GROUP_PHOTO.read_bytes()[:6000], "image", 400, "truncated"),
    "too many pixels": (lambda: _png(3000, 1000), "image", 413, "the limit is 2,000,000"),
    "too large": (lambda: b"\xff" * 600_000, "image", 413, "larger than the limit of 0.5 MB"),
    "wrong field": (lambda: FACE_PHOTO.read_bytes(), "photo", 422, "'image' is missing"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_each_bad_upload_gets_a_clear_4xx_json_error_and_the_server_serves_on(client, case):
    make, field, status, words = BAD_UPLOADS[case]
    response = _post(client, make(), field=field)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert words in response.json()["error"]
    _still_serving(client)


def test_uploads_that_are_not_files_or_not_multipart_are_refused(client):
    assert _post(client, FACE_PHOTO.read_bytes()).status_code == 200
    text_field = client.post("/api/keypoints", files={"image": (None, "hello")})
    assert text_field.status_code == 422 and "text, not a file" in text_field.json()["error"]
    raw = client.post("/api/keypoints", content=FACE_PHOTO.read_bytes(),
                      headers={"content-type": "image/jpeg"})
    assert raw.status_code == 415 and "multipart/form-data" in raw.json()["error"]
    unknown = client.get("/api/nothing-here")
    assert unknown.status_code == 404 and "error" in unknown.json()
    _still_serving(client)


def test_a_body_without_a_length_is_cut_off_at_the_limit(client):
    def chunks():  # no Content-Length: the limit must hold while it streams in
        for _ in range(20):
            yield b"x" * 50_000

    response = client.post("/api/keypoints", content=chunks(),
                           headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413 and "0.5 MB" in response.json()["error"]
    _still_serving(client)


def test_the_client_file_name_is_only_a_label(client):
    response = _post(client, FACE_PHOTO.read_bytes(), name="../../etc/passwd.jpg")
    assert response.status_code == 200 and response.json()["file"] == "passwd.jpg"
    windows = _post(client, FACE_PHOTO.read_bytes(), name="C:\\Users\\me\\face.jpg")
    assert windows.json()["file"] == "face.jpg"


def _video(path, frames: int, fps: float = 10.0, scale: int = 1) -> bytes:
    rgb = reading.read_photo(FACE_PHOTO)
    rgb = np.kron(rgb, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else rgb
    h, w = rgb.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for shift in range(frames):
        writer.write(cv2.cvtColor(np.roll(rgb, shift * 2, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    return path.read_bytes()


def test_video_gives_every_frame_and_refuses_one_over_the_length_limit(client, tmp_path):
    response = _post(client, _video(tmp_path / "short.avi", 5), "short.avi", "video",
                     "/api/video")
    assert response.status_code == 200, response.text
    record = response.json()
    assert [f["frame"] for f in record["frames"]] == list(range(5))
    assert all(len(f["faces"]) == 1 for f in record["frames"]) and record["fps"] == 10.0
    too_long = _post(client, _video(tmp_path / "long.avi", 30), "long.avi", "video", "/api/video")
    assert too_long.status_code == 413 and "limit is 2 s" in too_long.json()["error"]
    huge = _post(client, _video(tmp_path / "huge.avi", 1, scale=10), "huge.avi", "video",
                 "/api/video")  # 10x the photo's sides: over the 2,000,000-pixel limit
    assert huge.status_code == 413 and "the limit is 2,000,000" in huge.json()["error"]
    not_video = _post(client, b"\x00" * 1000, "clip.mp4", "video", "/api/video")
    assert not_video.status_code == 400 and "not a video" in not_video.json()["error"]
    _still_serving(client)


def test_work_past_its_deadline_gets_504_and_lets_go_of_the_model(tiny_onnx, tmp_path):
    """A request that cannot be done in time (the model held by another request until its work
    has given up) gets its 504, and its work stops: it does not take the model after its client
    has gone, nor once its deadline has passed, and a video stops at the next frame. Every step
    waits for an event (the response, the work's call ending), never for a time: the 2 s limit
    only decides when the 504 comes, not whether. (The server's warm thread takes the work at
    once; work still queued at the deadline would be cancelled, never run, and this test would
    say it never ended rather than pass.)"""
    import threading
    import time

    app = create_app(str(tiny_onnx), limits=Limits(timeout_s=2), page=False)
    service = app.state.service
    searches, outcomes, ended = [], [], threading.Event()
    faces_in = service.pipeline.faces_in
    service.pipeline.faces_in = lambda *a, **k: searches.append(1) or faces_in(*a, **k)
    photo = service.photo

    def watched(*args, **kwargs):  # the request's work on the server's thread: how it ended
        try:
            return photo(*args, **kwargs)
        except RequestError as e:
            outcomes.append(e.status)
            raise
        finally:
            ended.set()

    with TestClient(app) as client:
        _still_serving(client)  # the server's worker thread is up: it takes the next work at once
        searches.clear()
        service.photo = watched
        with service._lock:  # the model busy with a long request
            response = _post(client, FACE_PHOTO.read_bytes())
            assert response.status_code == 504 and "limit of 2 s" in response.json()["error"]
            assert ended.wait(timeout=120), "the timed-out work never ended"
        assert outcomes == [504] and searches == [], "timed-out work went on to use the model"
        service.photo = photo
        _still_serving(client)
    # the model free, the deadline passed: the work refuses before it searches
    with pytest.raises(RequestError) as late:
        service.faces(reading.read_photo(FACE_PHOTO), deadline=time.monotonic() - 1)
    assert late.value.status == 504 and len(searches) == 1  # only _still_serving's search
    video = tmp_path / "clip.avi"
    _video(video, 5)
    with pytest.raises(RequestError) as refused:
        service.video_file(video, "clip.avi", deadline=time.monotonic() - 1)
    assert refused.value.status == 504 and len(searches) == 1  # no frame was searched


def test_an_annotated_video_that_cannot_be_written_is_a_clear_error_leaving_nothing(tmp_path):
    from facekeypoints.errors import UserError
    from facekeypoints.photos.video import AnnotatedVideo

    frame = np.zeros((48, 64, 3), np.uint8)
    target = tmp_path / "missing-folder" / "clip.mp4"
    with pytest.raises(UserError, match="missing-folder/clip.mp4: OpenCV cannot write"), \
            AnnotatedVideo(target, 10.0) as video:
        video.write(frame)
    assert not (tmp_path / "missing-folder").exists()
    with pytest.raises(RuntimeError), AnnotatedVideo(tmp_path / "kept.mp4", 10.0) as video:
        video.write(frame)
        raise RuntimeError("the frames stopped half-way")
    assert list(tmp_path.iterdir()) == [], "a failed copy left a file behind"
    with AnnotatedVideo(tmp_path / "done.webm", 10.0) as video:
        for _ in range(3):
            video.write(frame)
    assert [p.name for p in tmp_path.iterdir()] == ["done.webm"]


def test_with_a_token_every_route_needs_it(tiny_onnx):
    app = create_app(str(tiny_onnx), token="s3cret", page=False)
    with TestClient(app) as client:
        assert client.get("/api/health").status_code == 401
        wrong = client.get("/api/health", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "token" in wrong.json()["error"]
        assert _post(client, FACE_PHOTO.read_bytes()).status_code == 401
        bearer = {"Authorization": "Bearer s3cret"}
        assert client.get("/api/health", headers=bearer).status_code == 200
        assert client.get("/docs").status_code == 401
        first = client.get("/docs?token=s3cret")  # the browser's way in; a cookie keeps it
        assert first.status_code == 200 and "facekeypoints_token" in first.headers["set-cookie"]
        assert client.get("/api/health").status_code == 200  # the cookie, no header


def test_serve_mistakes_are_one_line_errors(tmp_path):
    from .cli_helpers import one_line_error, run_here

    one_line_error(run_here("serve", "--model", tmp_path / "gone.onnx"), "gone.onnx",
                   "no such run folder or model file")
    one_line_error(run_here("serve", "--port", "70000", "--model", "x"), "--port", "70000")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    one_line_error(run_here("serve", "--model", broken), "broken.onnx", "cannot load")


def test_the_pages_video_rows_carry_each_frames_time_as_detect_writes_it(tmp_path):
    """The page's CSV of a video gave every row an empty `time` (detect: seconds from the
    start)."""
    from facekeypoints.serve.service import KeypointService

    video = tmp_path / "clip.avi"
    _video(video, 3, fps=10.0)
    rows: list[dict] = []
    KeypointService(None).video_file(video, "clip.avi", rows=rows)
    assert rows, "no face was followed"
    assert {(r["frame"], r["time"]) for r in rows} <= {(0, "0.000"), (1, "0.100"), (2, "0.200")}
    assert all(r["time"] != "" for r in rows)
