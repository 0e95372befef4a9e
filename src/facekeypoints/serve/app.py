"""`facekeypoints serve`: the service (`service.py`) behind an HTTP API (FastAPI on uvicorn),
with the web page (`page.py`) mounted on the same app.

Safe by default: every upload is capped in bytes before it is parsed, every photo in pixels
before it is decoded, every video in seconds; each request has a time limit; a bad upload gets a
4xx JSON error naming what was wrong; nothing a request sends is used as a path on disk; and an
optional token guards every route."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import UserError
from .service import KeypointService, Limits, RequestError, upload_name

TOKEN_ENV = "FACEKEYPOINTS_TOKEN"
TOKEN_COOKIE = "facekeypoints_token"


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


def create_app(model, detector: str = "blazeface", limits: Limits | None = None,
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
        """`func(*args, deadline=...)` on a worker thread; the client gets its 504 at the
        deadline, and the work stops there too (the service checks it)."""
        deadline = service.deadline()
        future = asyncio.wrap_future(executor.submit(func, *args, deadline=deadline))
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
            from .page import mount_page
        except ImportError as e:
            raise UserError(f"the web page needs Gradio ({e.name} is missing): pip install "
                            "'facekeypoints[serve]', or serve the API alone with --no-page") \
                from None
        mount_page(app, service, runs_folder)
    app.add_middleware(BodyLimit, limit=limits.upload_bytes)
    if token:
        app.add_middleware(TokenGate, token=token)
    return app


def serve(model, host: str = "127.0.0.1", port: int = 8000, detector: str = "blazeface",
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
