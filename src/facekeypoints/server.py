"""`facekeypoints serve`: the photo pipeline behind an HTTP API (FastAPI on uvicorn), with the
web page (`webpage.py`) mounted on the same app.

Safe by default: every upload is capped in bytes before it is parsed, every photo in pixels
before it is decoded, every video in seconds; each request has a time limit; a bad upload gets a
4xx JSON error naming what was wrong; nothing a request sends is used as a path on disk; and an
optional token guards every route."""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath

import cv2
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .detection import face_rows
from .errors import UserError
from .keypoints import KEYPOINTS
from .photos import (
    VIDEO_SUFFIXES,
    Face,
    FacePipeline,
    PhotoError,
    PhotoTooLarge,
    decode_photo,
    draw,
)
from .tracking import FaceTracker

TOKEN_ENV = "FACEKEYPOINTS_TOKEN"
TOKEN_COOKIE = "facekeypoints_token"


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server."""

    upload_mb: float = 50.0  # the whole request body, photos and videos alike
    max_pixels: int = 40_000_000  # a photo's width x height, checked before decoding
    video_seconds: float = 60.0
    timeout_s: float = 120.0  # waiting for the model included

    @property
    def upload_bytes(self) -> int:
        return int(self.upload_mb * 1024 * 1024)


class RequestError(Exception):
    """A request the server refuses: an HTTP status and one line saying why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def upload_name(filename: str | None, fallback: str) -> str:
    """The uploaded file's own name, for the records only: never used as a path."""
    name = PurePath((filename or "").replace("\\", "/")).name
    return name[:200] or fallback


class KeypointService:
    """The model, the detector and the limits, shared by the API and the page. One request uses
    the model at a time (Keras models and the detector are not made for several threads)."""

    def __init__(self, model, detector: str = "hog", limits: Limits | None = None):
        from .predict import load

        self.predictor = load(model, prefer_onnx=True)
        self.pipeline = FacePipeline(self.predictor, detector)
        self.detector, self.limits = detector, limits or Limits()
        self.model_path = str(model)
        self._lock = threading.Lock()

    def health(self) -> dict:
        from . import __version__

        return {"status": "ok", "version": __version__, "model": self.predictor.name,
                "model_path": self.model_path, "model_kind": type(self.predictor).__name__,
                "detector": self.detector, "keypoints": list(KEYPOINTS),
                "limits": asdict(self.limits)}

    def decode(self, data: bytes, name: str) -> np.ndarray:
        if not data:
            raise RequestError(400, f"{name}: empty upload (0 bytes)")
        try:
            return decode_photo(io.BytesIO(data), name, self.limits.max_pixels)
        except PhotoError as e:
            raise RequestError(413 if isinstance(e, PhotoTooLarge) else 400, str(e)) from None

    def faces(self, rgb: np.ndarray, tracker: FaceTracker | None = None,
              t: float | None = None) -> tuple[list[Face], float]:
        """The faces in one picture, or in the next frame (at `t` seconds) that `tracker`
        follows."""
        with self._lock:
            start = time.perf_counter()
            faces = tracker(rgb, t) if tracker is not None else self.pipeline.faces_in(rgb)
            return faces, time.perf_counter() - start

    def photo(self, data: bytes, name: str) -> dict:
        """One photo's record, in the format of `detect`'s keypoints.json."""
        rgb = self.decode(data, name)
        faces, seconds = self.faces(rgb)
        return photo_record(name, rgb, faces, seconds)

    def video(self, data: bytes, name: str, annotate_to: Path | None = None) -> dict:
        """Every frame's faces; with `annotate_to`, also a drawn copy of the video there."""
        if not data:
            raise RequestError(400, f"{name}: empty upload (0 bytes)")
        suffix = PurePath(name).suffix.lower()
        suffix = suffix if suffix in VIDEO_SUFFIXES else ".mp4"
        with tempfile.TemporaryDirectory(prefix="facekeypoints-") as folder:
            path = Path(folder) / f"upload{suffix}"  # our own name, never the client's
            path.write_bytes(data)
            return self.video_file(path, name, annotate_to)

    def video_file(self, path: Path, name: str, annotate_to: Path | None,
                   rows: list[dict] | None = None) -> dict:
        """Every frame's faces; `annotate_to` gets a drawn copy, `rows` the CSV rows."""

        capture, writer = cv2.VideoCapture(str(path)), None
        try:
            ok, bgr = capture.read() if capture.isOpened() else (False, None)
            if not ok:
                raise RequestError(400, f"{name}: not a video OpenCV can read, or no frames")
            height, width = bgr.shape[:2]
            if width * height > self.limits.max_pixels:
                raise RequestError(413, f"{name}: frames of {width}x{height} pixels; the limit is "
                                   f"{self.limits.max_pixels:,}")
            fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            limit = self.limits.video_seconds
            if count / fps > limit:
                raise RequestError(413, f"{name}: video is {count / fps:.1f} s long; the limit "
                                   f"is {limit:g} s")
            max_frames = int(limit * fps) + 1  # a header may understate the length
            frames, seconds = [], 0.0
            tracker = FaceTracker(self.pipeline)  # found once, then followed and smoothed
            while ok:
                if len(frames) >= max_frames:
                    raise RequestError(413, f"{name}: video runs past {limit:g} s; the limit")
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                faces, took = self.faces(rgb, tracker, len(frames) / fps)
                seconds += took
                if rows is not None:
                    rows += face_rows(name, faces, len(frames))
                frames.append({"frame": len(frames), "faces": [f.as_dict() for f in faces]})
                if annotate_to is not None:
                    if writer is None:
                        writer = video_writer(annotate_to, fps, rgb.shape[1], rgb.shape[0])
                    writer.write(draw(rgb, faces))
                ok, bgr = capture.read()
        finally:
            capture.release()
            if writer is not None:
                writer.release()
        return {"file": name, "width": width, "height": height, "fps": round(fps, 3),
                "frames": frames, "seconds": round(seconds, 4)}


def video_writer(path: Path, fps: float, width: int, height: int):
    """A writer whose file a browser can play: VP8 in WebM (OpenCV's wheels carry its encoder)."""
    return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), fps, (width, height))


def photo_record(name: str, rgb: np.ndarray, faces: list[Face], seconds: float) -> dict:
    return {"file": name, "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
            "faces": [f.as_dict() for f in faces], "seconds": round(seconds, 4)}


# ----------------------------------------------------------------------------- middleware


async def _send_json(send, status: int, body: dict, headers: list | None = None) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})


class _TooLarge(BaseException):  # noqa: N818
    """Raised from inside the body stream; a BaseException, so that no `except Exception` in a
    route (ours or Gradio's upload handler) mistakes it for a malformed body."""


class BodyLimit:
    """Refuses a request body over `limit` bytes, by its Content-Length before reading, or while
    it streams in when it has none; nothing over the limit is ever buffered."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"upload is larger than the limit of {self.limit / 1024 / 1024:g} MB"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await _send_json(send, 413, {"error": message})
        received, started = 0, False

        async def limited_receive():
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return event

        async def tracked_send(event):
            nonlocal started
            started = started or event["type"] == "http.response.start"
            await send(event)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except (_TooLarge, BaseExceptionGroup) as e:
            if isinstance(e, BaseExceptionGroup) and not e.subgroup(_TooLarge):
                raise
            if not started:
                await _send_json(send, 413, {"error": message})


class TokenGate:
    """With a token set, every route needs it: `Authorization: Bearer TOKEN`, or `?token=TOKEN`
    once in the browser (it is then kept in a cookie for the page's own requests)."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token

    def _given(self, scope) -> tuple[str, bool]:
        headers = dict(scope.get("headers", []))
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        from urllib.parse import parse_qs

        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0], True
        from http.cookies import SimpleCookie

        cookie = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
        return (cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else ""), False

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        given, from_query = self._given(scope)
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await _send_json(
                send, 401, {"error": "this server needs its access token: send "
                            "'Authorization: Bearer TOKEN', or open the page with ?token=TOKEN"},
                [(b"www-authenticate", b"Bearer")])
        if not from_query:
            return await self.app(scope, receive, send)

        async def with_cookie(event):
            if event["type"] == "http.response.start":
                cookie = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                event = {**event, "headers": [*event.get("headers", []),
                                              (b"set-cookie", cookie.encode())]}
            await send(event)

        await self.app(scope, receive, with_cookie)


# ----------------------------------------------------------------------------- the app


FACE_SCHEMA = {"type": "object", "properties": {
    "box": {"type": "object", "properties": {k: {"type": "number"} for k in
                                             ("left", "top", "width", "height")}},
    "score": {"type": "number"},
    "keypoints": {"type": "object", "description": "name -> [x, y] in the photo's pixels",
                  "additionalProperties": {"type": "array", "items": {"type": "number"}}}}}
PHOTO_SCHEMA = {"type": "object", "properties": {
    "file": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"},
    "faces": {"type": "array", "items": FACE_SCHEMA},
    "seconds": {"type": "number", "description": "time spent finding faces and keypoints"}}}
ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string"}}}


def _upload_body(field: str, what: str) -> dict:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [field],
        "properties": {field: {"type": "string", "format": "binary", "description": what}}}}}}}


def _responses(ok: dict) -> dict:
    error = {"content": {"application/json": {"schema": ERROR_SCHEMA}}}
    return {200: {"content": {"application/json": {"schema": ok}}},
            **{code: {**error, "description": why} for code, why in [
                (400, "not an image/video, truncated, empty"), (401, "token missing or wrong"),
                (413, "too large: bytes, pixels or seconds"), (415, "not multipart/form-data"),
                (422, "the form lacks the field"), (504, "took longer than the time limit")]}}


def create_app(model, detector: str = "hog", limits: Limits | None = None,
               token: str | None = None, page: bool = True, runs_folder: str | None = None):
    """The ASGI app: the API under /api, OpenAPI docs at /docs, the web page at /."""
    service = KeypointService(model, detector, limits)
    limits = service.limits
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="facekeypoints")
    app = FastAPI(title="facekeypoints", version=service.health()["version"],
                  description="Faces and their 15 facial keypoints in photos and videos.")
    app.state.service = service

    @app.exception_handler(RequestError)
    async def refused(request: Request, e: RequestError):
        return JSONResponse({"error": e.message}, status_code=e.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return JSONResponse({"error": "; ".join(str(x.get("msg")) for x in e.errors())},
                            status_code=422)

    async def upload(request: Request, field: str, what: str) -> tuple[bytes, str]:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise RequestError(415, f"expected a multipart/form-data upload with a field "
                               f"{field!r} holding {what}; got {content_type or 'no content type'}")
        try:
            form = await request.form(max_files=4, max_fields=20)
        except Exception as e:  # noqa: BLE001 - a malformed body is the client's fault
            raise RequestError(400, f"malformed multipart/form-data body ({e})") from None
        try:
            item = form.get(field)
            if item is None or isinstance(item, str):
                fields = ", ".join(repr(k) for k in form) or "none"
                problem = "is text, not a file" if isinstance(item, str) else "is missing"
                raise RequestError(422, f"form field {field!r} {problem}: expected {what} "
                                   f"(fields sent: {fields})")
            return await item.read(), upload_name(item.filename, field)
        finally:
            await form.close()

    async def in_worker(func, *args):
        future = asyncio.wrap_future(executor.submit(func, *args))
        try:
            return await asyncio.wait_for(future, limits.timeout_s)
        except TimeoutError:
            raise RequestError(504, f"took longer than the limit of {limits.timeout_s:g} s") \
                from None

    @app.get("/api/health", summary="Which model is loaded, and the limits")
    async def health() -> dict:
        return service.health()

    @app.post("/api/keypoints", summary="Faces and keypoints in one photo",
              openapi_extra=_upload_body("image", "a photo (JPEG, PNG, WebP, ...)"),
              responses=_responses(PHOTO_SCHEMA))
    async def keypoints(request: Request) -> JSONResponse:
        """The record `detect` writes into keypoints.json for one photo."""
        data, name = await upload(request, "image", "a photo")
        return JSONResponse(await in_worker(service.photo, data, name))

    @app.post("/api/video", summary="Faces and keypoints in every frame of a short video",
              openapi_extra=_upload_body("video", "a video (MP4, WebM, AVI, ...)"),
              responses=_responses({"type": "object"}))
    async def video(request: Request) -> JSONResponse:
        data, name = await upload(request, "video", "a video")
        return JSONResponse(await in_worker(service.video, data, name))

    if page:
        try:
            from .webpage import mount_page
        except ImportError as e:
            raise UserError(f"the web page needs Gradio ({e.name} is missing): pip install "
                            "'facekeypoints[serve]', or serve the API alone with --no-page") \
                from None
        mount_page(app, service, runs_folder)
    app.add_middleware(BodyLimit, limit=limits.upload_bytes)
    if token:
        app.add_middleware(TokenGate, token=token)
    return app


def serve(model, host: str = "127.0.0.1", port: int = 8000, detector: str = "hog",
          limits: Limits | None = None, token: str | None = None, page: bool = True,
          runs_folder: str | None = None, log=print) -> None:
    import uvicorn

    token = token or os.environ.get(TOKEN_ENV) or None
    app = create_app(model, detector, limits, token, page, runs_folder)
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        log(f"warning: serving on {host} without an access token; anyone who can reach this "
            f"machine can use it (set --token or ${TOKEN_ENV})")
    log(f"facekeypoints: serving {app.state.service.predictor.name} on http://{host}:{port}/ "
        f"(API: /api/keypoints, docs: /docs); Ctrl+C stops")
    uvicorn.run(app, host=host, port=port, log_level="warning",
                timeout_keep_alive=5, limit_concurrency=64)
