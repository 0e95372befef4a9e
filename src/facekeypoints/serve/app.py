"""`facekeypoints serve`: the service (`service.py`) behind an HTTP API (FastAPI on uvicorn),
with the web page (`page.py`) mounted on the same app.

Safe by default: every upload is capped in bytes before it is parsed, every photo in pixels
before it is decoded, every video in frames; the work in flight shares a memory budget; each
request has a time limit, and a client a time limit to send it; a bad upload gets a 4xx JSON
error naming what was wrong; nothing a request sends is used as a path on disk; only the
served host names are answered, and other web sites can neither read answers nor send uploads;
and an optional token guards every route."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h11
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import UserError
from ..photos.reading import only_our_formats
from .service import KeypointService, Limits, RequestError, upload_name

TOKEN_ENV = "FACEKEYPOINTS_TOKEN"
TOKEN_COOKIE = "facekeypoints_token"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# RFC 6265's cookie-octet: what a cookie value may hold unquoted (no space, '"', ',', ';', '\\')
COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+")


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
        return _cookie(headers.get(b"cookie", b"").decode("latin-1"), TOKEN_COOKIE), False

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


def _cookie(header: str, name: str) -> str:
    """The value of cookie `name` in a Cookie header. Not `http.cookies.SimpleCookie`: it drops
    every cookie after one it cannot parse, and browsers send the cookies of all the apps on a
    host (another's `a=b;c` would lock our users out)."""
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            return value.strip().strip('"')
    return ""


def checked_token(token: str | None) -> str | None:
    """The access token, or None for none; one that cannot work is refused at start."""
    if token is None:
        return None
    if not token:
        raise UserError("--token is empty (or $FACEKEYPOINTS_TOKEN is set to nothing): give a "
                        "token, or leave both out to serve without one")
    if not COOKIE_VALUE.fullmatch(token):
        raise UserError("--token may hold only printable ASCII without spaces, quotes, commas, "
                        "semicolons or backslashes (the browser keeps it in a cookie)")
    return token


# ----------------------------------------------------------------------------- the site's guard

# Response headers that may rightly carry the same value as a request header of the same name.
SHARED_HEADERS = {b"content-type", b"content-length", b"content-encoding", b"cache-control",
                  b"content-disposition", b"content-range", b"date", b"etag", b"vary",
                  b"last-modified", b"accept-ranges", b"server", b"set-cookie",
                  b"transfer-encoding"}
NEVER_ECHOED = {b"cookie", b"authorization", b"proxy-authorization", b"host"}
# Everything from this server only; 'unsafe-inline' because Gradio's page inlines its config and
# bootstrap scripts and styles (no 'unsafe-eval': the browser tests check the page works and
# reports no violation). No connections, frames or forms to anywhere else; no framing by others.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'{cdn}; "
       "style-src 'self' 'unsafe-inline'{cdn}; img-src 'self' data: blob:; "
       "media-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
       "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),  # ?token= must not leak
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cross-origin-resource-policy", b"same-origin")]
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _host_name(host: str) -> str:
    """`example.org:8000` -> `example.org`; `[::1]:8000` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class SiteGuard:
    """What a browser needs to keep other web sites out, for every route (the API, the docs and
    Gradio's page alike):

    - the Host header must name this server (`hosts`; None: any), so that DNS rebinding cannot
      turn another site's name into a way in;
    - a request that changes something (POST, PUT, ...) or opens a websocket, sent from a page
      of another origin (its Origin header), is refused: no uploads from other sites;
    - no response carries a request header back (Gradio's ranged file responses copy every
      request header, the token cookie included), and none carries Authorization or Cookie;
    - X-Frame-Options, a content security policy, nosniff and no referrer on every response.

    Errors are our JSON ones, hence not Starlette's TrustedHostMiddleware (plain text)."""

    def __init__(self, app, hosts: list[str] | None):
        self.app = app
        self.hosts = None if hosts is None else {_host_name(h) for h in hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = scope.get("headers", [])
        given = {}
        for key, value in headers:
            given.setdefault(key, value)
        host = given.get(b"host", b"").decode("latin-1")
        refusal = None
        if self.hosts is not None and _host_name(host) not in self.hosts:
            refusal = (400, "the Host header does not name this server (it answers to "
                       f"{', '.join(sorted(self.hosts))}; serve with --allow-host NAME "
                       "to add a name)")
        origin = given.get(b"origin")
        changes = scope["type"] == "websocket" or scope.get("method") in UNSAFE_METHODS
        if refusal is None and origin is not None and changes \
                and _host_of_origin(origin.decode("latin-1")) != host.strip().lower():
            refusal = (403, "requests from the pages of other web sites are refused")
        if refusal is not None:
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return await _send_json(send, refusal[0], {"error": refusal[1]},
                                    self._added(scope))

        echoes = {(k, v) for k, v in headers if k not in SHARED_HEADERS}

        async def guarded_send(event):
            if event["type"] == "http.response.start":
                kept = [(k, v) for k, v in event.get("headers", [])
                        if (k.lower(), v) not in echoes and k.lower() not in NEVER_ECHOED]
                names = {k.lower() for k, _ in kept}
                kept += [(k, v) for k, v in self._added(scope) if k not in names]
                event = {**event, "headers": kept}
            await send(event)

        await self.app(scope, receive, guarded_send)

    @staticmethod
    def _added(scope) -> list[tuple[bytes, bytes]]:
        # the API docs page alone loads Swagger UI from its CDN (pinned, with integrity hashes)
        cdn = " https://cdn.jsdelivr.net" if scope.get("path") == "/docs" else ""
        return [*SECURITY_HEADERS, (b"content-security-policy", CSP.format(cdn=cdn).encode())]


def _host_of_origin(origin: str) -> str:
    """`https://example.org:8443` -> `example.org:8443`: compared with the Host header (a proxy
    that adds TLS changes the scheme, not the host)."""
    return origin.strip().lower().partition("://")[2].rstrip("/")


def allowed_hosts(host: str, extra: tuple[str, ...] | list[str] = ()) -> list[str] | None:
    """The names the Host header may give: the address served on and, on loopback, the
    loopback names; plus `extra` (--allow-host). None (any) for a wildcard address with no
    names given, where the names clients use cannot be known."""
    if host in ("0.0.0.0", "::", "") and not extra:
        return None
    names = [host, *extra]
    if host in LOOPBACK:
        names += LOOPBACK
    return names


# ----------------------------------------------------------------------------- connections


def bounded_h11(read_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for reading each request, headers and body:
    uvicorn closes a connection that is idle after a response (`timeout_keep_alive`) but not
    one that never sends a request, or sends half of one, so enough of those would hold every
    connection. Passed to uvicorn as its `http` protocol class, its extension point."""

    class BoundedH11Protocol(H11Protocol):
        _read_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._watch()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch()

        def connection_lost(self, exc) -> None:
            self._stop_watch()
            super().connection_lost(exc)

        def _watch(self) -> None:
            """A timer while a request is awaited or half read; none while the app answers."""
            reading = self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
            if reading and self._read_timer is None and not self.transport.is_closing():
                self._read_timer = self.loop.call_later(read_timeout, self._read_timed_out)
            elif not reading:
                self._stop_watch()

        def _stop_watch(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

        def _read_timed_out(self) -> None:
            self._read_timer = None
            if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) \
                    and not self.transport.is_closing():
                if self.cycle is not None and not self.cycle.response_complete:
                    self.cycle.disconnected = True  # the app's receive() sees the client gone
                self.transport.close()

    return BoundedH11Protocol


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


SWAGGER_UI = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.36.0"  # pinned: the hashes below
SWAGGER_JS_SRI = "sha384-fUpRgC19yPykTqzdrUbdAg8NTiu16NEKf9U12J+IJWCg8/1mEI8f2+PEIz60Wyd+"
SWAGGER_CSS_SRI = "sha384-z/AtSaOHGn5MJ5auAHXUypohywlIWLBZo1jeGmhdpVIbCnFhxAH92cwdV41oyINc"
DOCS_PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>facekeypoints - API</title>
<link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css" integrity="{SWAGGER_CSS_SRI}"
 crossorigin="anonymous"></head>
<body><div id="swagger-ui"></div>
<script src="{SWAGGER_UI}/swagger-ui-bundle.js" integrity="{SWAGGER_JS_SRI}"
 crossorigin="anonymous"></script>
<script>SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui"}});</script>
</body></html>"""


def create_app(model, detector: str = "blazeface", limits: Limits | None = None,
               token: str | None = None, page: bool = True, runs_folder: str | None = None,
               hosts: list[str] | None = None):
    """The ASGI app: the API under /api, OpenAPI docs at /docs, the web page at /. `hosts`:
    the names the Host header may give (None: any)."""
    token = checked_token(token)
    only_our_formats()  # for Gradio's own opening of uploads too
    service = KeypointService(model, detector, limits)
    limits = service.limits
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="facekeypoints")
    # The server's own folder (0700, as mkdtemp makes it) for the page's uploads and results,
    # removed on shutdown: nothing in a cache shared with other users or other Gradio apps.
    folder = Path(tempfile.mkdtemp(prefix="facekeypoints-serve-"))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            shutil.rmtree(folder, ignore_errors=True)

    # Swagger UI from a pinned CDN version with integrity hashes (below), not FastAPI's
    # unpinned CDN links; no ReDoc
    app = FastAPI(title="facekeypoints", version=service.health()["version"],
                  description="Faces and their facial keypoints in photos and videos.",
                  docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.service, app.state.folder = service, folder

    @app.exception_handler(RequestError)
    async def refused(request: Request, e: RequestError):
        return JSONResponse({"error": e.message}, status_code=e.status, headers=e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return JSONResponse({"error": "; ".join(str(x.get("msg")) for x in e.errors())},
                            status_code=422)

    @contextlib.asynccontextmanager
    async def upload(request: Request, field: str, what: str):
        """The uploaded file (Starlette spools it to disk past 1 MB: it is read from there,
        after the photo's header has been checked) and its name, while the form is open."""
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
            name = upload_name(item.filename, field)
            if not item.size:
                raise RequestError(400, f"{name}: empty upload (0 bytes)")
            item.file.seek(0)
            yield item.file, name
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
        async with upload(request, "image", "a photo") as (file, name):
            return JSONResponse(await in_worker(service.photo, file, name))

    @app.post("/api/video", summary="Faces and keypoints in every frame of a short video",
              openapi_extra=_upload_body("video", "a video (MP4, WebM, AVI, ...)"),
              responses=_responses({"type": "object"}))
    async def video(request: Request) -> JSONResponse:
        async with upload(request, "video", "a video") as (file, name):
            return JSONResponse(await in_worker(service.video, file, name))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)

    # An empty CORS policy: same-origin needs none, and with a CORSMiddleware of ours Gradio
    # leaves out its own, which answered any localhost origin with credentials allowed.
    app.add_middleware(CORSMiddleware, allow_origins=[])
    if page:
        try:
            from .page import mount_page
        except ImportError as e:
            raise UserError(f"the web page needs Gradio ({e.name} is missing): pip install "
                            "'facekeypoints[serve]', or serve the API alone with --no-page") \
                from None
        mount_page(app, service, folder, runs_folder)
    app.add_middleware(BodyLimit, limit=limits.upload_bytes)
    if token:
        app.add_middleware(TokenGate, token=token)
    app.add_middleware(SiteGuard, hosts=hosts)
    return app


def tune_allocator() -> None:
    """glibc's malloc, set for a server of large, short-lived pictures: buffers of 1 MB and
    more get their own mappings, returned to the system when freed (by default that threshold
    grows with the first large frees, and later pictures then stay in the heap for good), and
    two arenas rather than eight per core. A no-op on other C libraries."""
    m_mmap_threshold, m_arena_max = -3, -8
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(m_mmap_threshold, 1 << 20)
        libc.mallopt(m_arena_max, 2)


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before "serving ..." is printed: a port in use is one line
    and a non-zero exit, not a traceback after it. It listens from then on, so a request sent
    once the line is out waits in its backlog for the server (never refused)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise UserError(f"--host {host}: not an address of this machine ({e.strerror})") \
            from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use (another server?): stop it, or "
                            "serve with --port N") from None
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror})") from None
    sock.listen(2048)  # uvicorn's backlog; it listens again on this socket when it starts
    return sock


def serve(model, host: str = "127.0.0.1", port: int = 8000, detector: str = "blazeface",
          limits: Limits | None = None, token: str | None = None, page: bool = True,
          runs_folder: str | None = None, allow_hosts: tuple[str, ...] = (),
          log=print) -> None:
    import uvicorn

    token = checked_token(token if token is not None else os.environ.get(TOKEN_ENV))
    limits = limits or Limits()
    tune_allocator()
    app = create_app(model, detector, limits, token, page, runs_folder,
                     allowed_hosts(host, allow_hosts))
    try:
        # bound before a line is printed: a port in use is one line and a non-zero exit
        sock = listening_socket(host, port)
        try:
            if host not in LOOPBACK and not token:
                log(f"warning: serving on {host} without an access token; anyone who can "
                    f"reach this machine can use it (set --token or ${TOKEN_ENV})")
            shown = f"[{host}]" if ":" in host else host
            service = app.state.service
            shown_model = (f"the built-in model ({service.model_name})" if service.builtin
                           else service.model_name)
            log(f"facekeypoints: serving {shown_model} on "
                f"http://{shown}:{sock.getsockname()[1]}/ (API: /api/keypoints, /api/video; "
                "docs: /docs); "
                "Ctrl+C stops")
            # No limit_concurrency: uvicorn counts open connections against it, so idle ones
            # locked everyone out; the memory budget bounds the work, the read timeout the
            # connections.
            config = uvicorn.Config(app, log_level="warning", timeout_keep_alive=5,
                                    http=bounded_h11(limits.read_timeout_s))
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            sock.close()
    finally:
        shutil.rmtree(app.state.folder, ignore_errors=True)  # also when it never started
