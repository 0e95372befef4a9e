"""`facekeypoints serve` under attack (issue 35): a real server on 127.0.0.1, started as a user
starts it (its own process, stopped by PID), sent what a hostile local process or web page
would send. Every request goes to loopback, every loop and wait is bounded."""

from __future__ import annotations

import io
import json
import os
import secrets
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from .conftest import SHARED
from .serving import SERVE, serve_process

FACE_PHOTO = SHARED / "photos" / "youtube" / "Lincoln_Chafee_52.jpg"
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLI = SERVE
MEMORY_MB = 700  # the test server's budget: one 36-megapixel photo at a time, not two


def _server_folders(tmp: Path) -> set[Path]:
    return set(tmp.glob("facekeypoints-serve-*"))


@pytest.fixture(scope="module")
def server(tiny_onnx, tiny_run, tmp_path_factory):
    """One server for the module: a token, a small video limit, a memory budget. Its deadlines
    (--timeout, --read-timeout) are long: no test here may pass or fail with how fast this
    machine answers; the read timeout's own test starts a server of its own. Its temporary
    folder is one of its own (TMPDIR), where no other server (another pytest worker's) writes."""
    log = tmp_path_factory.mktemp("attack") / "serve.log"
    tmp = tmp_path_factory.mktemp("server-tmp")
    with serve_process("--model", str(tiny_onnx), "--token", TOKEN, "--runs",
                str(tiny_run.path.parent), "--video-seconds", "2", "--timeout", "600",
                "--memory-mb", str(MEMORY_MB), log=log, env={"TMPDIR": str(tmp)}) as (process,
                                                                                     url):
        (folder,) = _server_folders(tmp)
        yield {"process": process, "url": url, "folder": folder, "log": log, "tmp": tmp}


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


def _upload(url: str, data: bytes, name: str) -> str:
    """A file uploaded as the page uploads it: its path on the server."""
    response = httpx.post(f"{url}/gradio_api/upload", files={"files": (name, data)},
                          headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()[0]


def _file(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def _queue(url: str, fn_index: int, data: list, timeout: float = 60) -> tuple[dict, str]:
    """The page's own protocol, raw: POST queue/join, then read queue/data until the event
    completes (or, for the webcam's stream, sends its first output). The message, and all the
    text the server sent."""
    session = secrets.token_hex(8)
    join = httpx.post(f"{url}/gradio_api/queue/join", headers=AUTH, timeout=30,
                      json={"data": data, "fn_index": fn_index, "session_hash": session,
                            "event_data": None, "trigger_id": None})
    assert join.status_code == 200, join.text
    lines, deadline = [], time.monotonic() + timeout
    with httpx.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session},
                      headers=AUTH, timeout=timeout) as stream:
        for line in stream.iter_lines():
            lines.append(line)
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") in ("process_completed", "process_streaming"):
                    return message, "\n".join(lines)
            assert time.monotonic() < deadline, "the page's event did not finish in time"
    raise AssertionError(f"the queue closed without an answer: {lines}")


def _fn_index(url: str, name: str) -> int:
    config = httpx.get(f"{url}/config", headers=AUTH, timeout=30).json()
    (index,) = [d["id"] for d in config["dependencies"] if d.get("api_name") == name]
    return index


def _png(width: int, height: int, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def _png16(side: int) -> bytes:
    """A 16-bit grey PNG: small on the wire, `side` x `side` pixels of work."""
    buffer = io.BytesIO()
    Image.fromarray(np.full((side, side), 40000, np.uint16)).save(buffer, "PNG")
    return buffer.getvalue()


def _bad_tiff() -> bytes:
    """A tiny TIFF whose StripOffsets tag is typed ASCII: Pillow raises TypeError on it."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry:entry + 2])[0] == 273:  # StripOffsets
            data[entry + 2:entry + 4] = struct.pack("<H", 2)  # ASCII
    return bytes(data)


# ----------------------------------------------------------------------------- the page's files


def test_no_page_handler_opens_a_file_it_was_not_sent(server, tmp_path):
    """The raw queue/join a local process could send, naming a server path, for every handler
    of the page: refused, nothing drawn, and the answer names no path."""
    url = server["url"]
    private = tmp_path / "private"
    private.mkdir()
    photo = private / "photo.jpg"
    photo.write_bytes(FACE_PHOTO.read_bytes())
    clip = private / "clip.avi"
    _write_video(clip, 3, 10.0)
    no_suffix = private / "secret"
    no_suffix.write_bytes(FACE_PHOTO.read_bytes())
    elsewhere = tmp_path / "elsewhere-runs"
    elsewhere.mkdir()
    cases = [("on_photo", [_file(str(photo))]), ("on_video", [_file(str(clip))]),
             ("on_webcam", [_file(str(no_suffix)), None]),
             ("on_photo", [_file(str(private / ".." / "private" / "photo.jpg"))]),
             ("on_webcam", [_file("private/secret"), None])]
    for handler, data in cases:
        message, text = _queue(url, _fn_index(url, handler), data)
        assert message["msg"] == "process_completed" and message["success"] is False, \
            (handler, message)
        assert "output" not in message or "data" not in message["output"], (handler, message)
        assert str(private) not in text and "/tmp" not in text and "keypoints" not in text, \
            (handler, text)
    # the runs tab: only the runs of the folder the server was started with
    message, text = _queue(url, _fn_index(url, "show"), [[str(elsewhere)]])
    assert "elsewhere-runs" not in json.dumps(message.get("output", {}).get("data", "")), text
    # and an upload of its own is served, so the refusals above are not a broken page
    message, _ = _queue(url, _fn_index(url, "on_photo"),
                        [_file(_upload(url, FACE_PHOTO.read_bytes(), "face.jpg"))])
    assert message["success"] is True and "1 face found" in json.dumps(message["output"])


def test_webcam_frames_obey_max_pixels(server):
    """A webcam frame is a picture like any other: over --max-pixels (40 million here) it is
    refused from its header, before Gradio or we decode it."""
    url = server["url"]
    frame = _upload(url, _png(8000, 5001), "frame.png")  # 40,008,000 pixels, 40 KB
    message, _ = _queue(url, _fn_index(url, "on_webcam"), [_file(frame), None])
    assert message["success"] is False, message
    assert "the limit is 40,000,000" in message["output"]["error"], message


def test_a_file_the_decoder_chokes_on_is_a_4xx_and_one_line_on_the_page(server):
    url = server["url"]
    response = httpx.post(f"{url}/api/keypoints", headers=AUTH, timeout=30,
                          files={"image": ("bad.tif", _bad_tiff())})
    assert response.status_code == 400, response.text
    assert "bad.tif: unreadable image" in response.json()["error"]
    message, _ = _queue(url, _fn_index(url, "on_photo"),
                        [_file(_upload(url, _bad_tiff(), "bad.tif"))])
    error = message["output"]["error"]
    assert message["success"] is False and "bad.tif: unreadable image" in error, message
    assert "\n" not in error and "Traceback" not in error and "/" not in error


# ----------------------------------------------------------------------------- memory


def test_memory_has_a_budget_and_returns_after_a_burst(server):
    """Two 36-megapixel 16-bit PNGs (a few KB each) at once: with a budget of 700 MB the
    second waits for the first, the server's peak stays under its idle size plus the budget,
    and once they are done its memory is back near where it was. The second waits for room at
    most QUEUE_WAIT_S (30 s): where the first takes longer than that (a slow machine), it is
    refused with a 503 and Retry-After, as the budget must; either way it never ran beside it."""
    url, pid = server["url"], server["process"].pid
    big = _png16(6000)
    assert len(big) < 200_000
    httpx.get(f"{url}/api/health", headers=AUTH, timeout=10)
    idle = _rss_mb(pid)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
    statuses = []

    def send() -> None:
        response = httpx.post(f"{url}/api/keypoints", headers=AUTH, timeout=600,
                              files={"image": ("big.png", big)})
        statuses.append((response.status_code, response.headers.get("retry-after")))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    peak = _rss_mb(pid, "VmHWM")
    assert sorted(statuses) in ([(200, None), (200, None)], [(200, None), (503, "5")]), statuses
    assert peak - idle < MEMORY_MB, f"peak {peak:.0f} MB from an idle {idle:.0f} MB"
    after = _rss_mb(pid)
    assert after - idle < 100, f"{after:.0f} MB after the burst, {idle:.0f} MB before"


def test_a_full_budget_is_a_503_with_retry_after():
    """The budget itself (in process: a real server would need a minute of waiting): a request
    that does not fit waits for room, and one that waits too long is refused with Retry-After;
    room made while one waits lets it in. Its waits are seen as they happen (each call of
    the budget's condition), not inferred from a clock."""
    from facekeypoints.serve.service import MemoryBudget, RequestError

    waits: list[str] = []

    class Seen(threading.Condition):
        def wait(self, timeout=None):
            waits.append(threading.current_thread().name)
            return super().wait(timeout)

    budget = MemoryBudget(100)
    budget._room = Seen()
    with budget.hold(60, "first"):
        with pytest.raises(RequestError) as refused, budget.hold(60, "second", wait_s=0.2):
            pass
        assert waits, "a request that does not fit was refused without waiting for room"
        assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "5"
        assert "try again in 5 s" in refused.value.message
        went_in = threading.Event()

        def later() -> None:
            with budget.hold(60, "fourth", wait_s=600):
                went_in.set()

        thread = threading.Thread(target=later, name="fourth")
        thread.start()
        deadline = time.monotonic() + 60  # a bound on a hang, not a time to wait
        while "fourth" not in waits:
            assert time.monotonic() < deadline and thread.is_alive(), "it never waited"
            time.sleep(0.01)
        assert not went_in.is_set(), "a request that does not fit went ahead"
    thread.join(timeout=60)
    assert went_in.is_set() and not thread.is_alive()
    assert budget.used == 0
    with pytest.raises(RequestError) as too_big, budget.hold(101, "huge"):
        pass
    assert too_big.value.status == 413 and "memory budget" in too_big.value.message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_header_of_20000x20000_is_refused_before_decoding():
    """MAX_PIXELS is 250 million: a PNG whose header claims 400 million pixels is refused from
    its header (it has no pixel data at all; Pillow only warns below twice its limit)."""
    from facekeypoints.photos.reading import MAX_PIXELS, PhotoTooLarge, decode_photo

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0,
                                                             0, 0))
           + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    assert MAX_PIXELS == 250_000_000
    with pytest.raises(PhotoTooLarge, match="20000x20000"):  # from the header: no decoding
        decode_photo(io.BytesIO(png), "claims.png")


# ----------------------------------------------------------------------------- connections


def test_idle_and_half_sent_connections_neither_lock_out_nor_stay(tiny_onnx, tmp_path):
    """A server of its own with a --read-timeout of 2 s: 80 connections that send nothing or
    half a request do not lock others out, and the server closes each (the event waited for;
    how soon is not asserted)."""
    with serve_process("--model", str(tiny_onnx), "--token", TOKEN, "--no-page", "--read-timeout",
                "2", log=tmp_path / "serve.log") as (_, url):
        _idle_connections(url)


def _idle_connections(url: str) -> None:
    port = int(url.rsplit(":", 1)[1])
    sockets = []
    try:
        for i in range(80):  # more than uvicorn's limit_concurrency of 64 was
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            if i % 8 == 0:  # half a request: headers never finished
                s.sendall(b"POST /api/keypoints HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            sockets.append(s)
        response = httpx.get(f"{url}/api/health", headers=AUTH, timeout=60)
        assert response.status_code == 200, response.text  # not a 503
        closed, bound = 0, time.monotonic() + 120  # a bound on a hang, for all of them
        for s in sockets:  # each closed by the server once its --read-timeout (2 s) passes
            s.settimeout(max(0.1, bound - time.monotonic()))  # the close is the event
            try:
                closed += s.recv(1) == b""
            except (ConnectionResetError, TimeoutError):
                closed += 0
        assert closed == len(sockets), f"{len(sockets) - closed} connections still open"
    finally:
        for s in sockets:
            s.close()


# ----------------------------------------------------------------------------- other sites


def test_other_sites_can_neither_read_nor_upload(server):
    url = server["url"]
    foreign = {**AUTH, "Origin": "http://localhost:9999"}
    photo = {"image": ("face.jpg", FACE_PHOTO.read_bytes())}
    upload = httpx.post(f"{url}/api/keypoints", headers=foreign, files=photo, timeout=30)
    assert upload.status_code == 403 and "other web sites" in upload.json()["error"]
    gradio = httpx.post(f"{url}/gradio_api/upload", headers=foreign, timeout=30,
                        files={"files": ("face.jpg", FACE_PHOTO.read_bytes())})
    assert gradio.status_code == 403
    own = httpx.post(f"{url}/api/keypoints", headers={**AUTH, "Origin": url}, files=photo,
                     timeout=30)
    assert own.status_code == 200, own.text
    for path in ("/config", "/gradio_api/info", "/api/health"):
        answer = httpx.get(f"{url}{path}", headers=foreign, timeout=30)
        assert "access-control-allow-origin" not in answer.headers, path
        assert "access-control-allow-credentials" not in answer.headers, path
    preflight = httpx.options(f"{url}/gradio_api/upload", timeout=30, headers={
        "Origin": "http://localhost:9999", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    rebound = httpx.get(f"{url}/api/health", headers={**AUTH, "Host": "evil.example:80"},
                        timeout=30)
    assert rebound.status_code == 400 and "Host" in rebound.json()["error"]
    for host in ("localhost", "127.0.0.1"):
        port = url.rsplit(":", 1)[1]
        assert httpx.get(f"{url}/api/health", headers={**AUTH, "Host": f"{host}:{port}"},
                         timeout=30).status_code == 200


def test_no_request_header_comes_back(server):
    url = server["url"]
    path = _upload(url, FACE_PHOTO.read_bytes(), "face.jpg")
    cookie = f"facekeypoints_token={TOKEN}"
    response = httpx.get(f"{url}/gradio_api/file={path}", timeout=30, headers={
        **AUTH, "Range": "bytes=0-10", "Cookie": cookie, "X-Private": "p-value"})
    assert response.status_code == 206 and len(response.content) == 11
    echoed = {k: v for k, v in response.headers.items()
              if k in ("authorization", "cookie", "x-private", "range", "user-agent")}
    assert not echoed, echoed
    assert TOKEN not in str(response.headers)


def test_pages_carry_frame_and_script_policies_and_docs_pin_their_scripts(server):
    url = server["url"]
    page = httpx.get(f"{url}/", headers=AUTH, timeout=30)
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    docs = httpx.get(f"{url}/docs", headers=AUTH, timeout=30)
    assert docs.status_code == 200
    tags = docs.text.replace("\n", " ").split("<")
    remote = [tag for tag in tags if "https://" in tag]
    assert len(remote) == 2 and all('integrity="sha384-' in tag for tag in remote), remote
    assert "@5/" not in docs.text  # a pinned version, not a moving major


# ----------------------------------------------------------------------------- video


def _write_video(path: Path, frames: int, fps: float) -> bytes:
    rgb = cv2.imread(str(FACE_PHOTO))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps,
                             (rgb.shape[1], rgb.shape[0]))
    for shift in range(frames):
        writer.write(np.roll(rgb, shift, axis=1))
    writer.release()
    return path.read_bytes()


def test_video_length_counts_frames_not_the_header_rate(server, tmp_path):
    """80 frames declared at 1,000 frames a second ("0.08 s"): with --video-seconds 2 it is
    refused, as 80 frames are more than 2 s of video at any real rate."""
    clip = _write_video(tmp_path / "fast.avi", 80, 1000.0)
    response = httpx.post(f"{server['url']}/api/video", headers=AUTH, timeout=60,
                          files={"video": ("fast.avi", clip)})
    assert response.status_code == 413, response.text
    assert "the limit is 2 s" in response.json()["error"]


# ----------------------------------------------------------------------------- the token


def test_the_token_cookie_survives_a_malformed_cookie_before_it(server):
    url = server["url"]
    cookies = f"a=b;c; other=\"x y\"; facekeypoints_token={TOKEN}"
    response = httpx.get(f"{url}/api/health", headers={"Cookie": cookies}, timeout=30)
    assert response.status_code == 200, response.text
    wrong = httpx.get(f"{url}/api/health", headers={"Cookie": "a=b;c; facekeypoints_token=x"},
                      timeout=30)
    assert wrong.status_code == 401


@pytest.mark.parametrize("token", ["", "two words", "semi;colon"])
def test_a_token_that_cannot_work_is_refused_at_start(token):
    result = subprocess.run([*CLI, "--no-page", "--token", token, "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--token" in lines[0], result.stderr


# ----------------------------------------------------------------------------- start and stop


def test_a_busy_port_is_one_line_and_nothing_served():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run([*CLI, "--no-page", "--port", str(port)], capture_output=True,
                                text=True, timeout=120)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"port {port}" in lines[0] and "in use" in lines[0], \
        result.stderr
    assert "serving" not in result.stderr and "Traceback" not in result.stderr


def test_the_builtin_model_is_shown_by_its_name(tmp_path):
    with serve_process("--no-page", log=tmp_path / "serve.log") as (_, url):
        health = httpx.get(f"{url}/api/health", timeout=30).json()
    assert health["model"] == "builtin" and health["model_kind"] == "built-in"
    first = (tmp_path / "serve.log").read_text().splitlines()[0]
    assert "serving the built-in model (builtin) on" in first, first


def test_help_names_every_route():
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60)
    assert "/api/video" in result.stdout and "/api/keypoints" in result.stdout


def test_results_live_in_the_servers_own_folder_and_go_with_it(server):
    """Last in this module: it stops the module's server. Uploads, results and Gradio's cache
    are in one 0700 folder of the server's own (not the $TMPDIR/gradio every Gradio app
    shares), and it is removed when the server stops."""
    url, folder = server["url"], server["folder"]
    shared_cache = server["tmp"] / "gradio"
    before = set(shared_cache.rglob("*")) if shared_cache.exists() else set()
    message, _ = _queue(url, _fn_index(url, "on_photo"),
                        [_file(_upload(url, FACE_PHOTO.read_bytes(), "mine.jpg"))])
    assert message["success"] is True, message
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    written = [p for p in folder.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"mine.jpg", "keypoints.json", "keypoints.csv", "keypoints.jpg"} <= names, names
    for output in message["output"]["data"]:
        for item in output if isinstance(output, list) else [output]:
            if isinstance(item, dict) and item.get("path"):
                assert Path(item["path"]).is_relative_to(folder), item["path"]
    after = set(shared_cache.rglob("*")) if shared_cache.exists() else set()
    assert after == before, "the server wrote into the shared Gradio cache"
    server["process"].terminate()
    server["process"].wait(timeout=30)
    assert not folder.exists(), "the server's folder outlived it"


def test_result_folders_are_unique_and_a_running_one_is_never_pruned(tmp_path, monkeypatch):
    """In process: many requests at once get folders of their own, and a folder a request
    (a video) still writes to survives any number of newer ones."""
    from facekeypoints.serve import page

    monkeypatch.setattr(page, "KEEP_RESULTS", 4)
    results = page.ResultFolders(tmp_path / "results")
    made: list[Path] = []
    barrier = threading.Barrier(8)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can: races show

    def request() -> None:
        barrier.wait(timeout=10)
        for _ in range(10):
            with results.new() as folder:
                (folder / "keypoints.json").write_text("[]")
                made.append(folder)

    try:
        with results.new() as running:
            threads = [threading.Thread(target=request) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert running.is_dir(), "a folder in use was pruned"
            (running / "annotated.webm").write_bytes(b"still writing")
    finally:
        sys.setswitchinterval(old)
    assert len(set(made)) == len(made) == 80
    assert len(list((tmp_path / "results").iterdir())) == 4
    assert stat.S_IMODE((tmp_path / "results").stat().st_mode) == 0o700
    assert os.path.commonpath(made) == str(tmp_path / "results")


def test_the_handlers_check_paths_themselves(tiny_onnx, tmp_path, monkeypatch):
    """In process, a second line of defence: called directly (as Gradio calls them when its
    own check is off, as it was when mounted), the page's handlers refuse a file that was not
    uploaded to this server, in words that name no path, and delete nothing."""
    import gradio as gr

    from facekeypoints.serve.page import build_page
    from facekeypoints.serve.service import KeypointService

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "restored"))  # build_page sets it
    page = build_page(KeypointService(str(tiny_onnx)), tmp_path / "server")
    handlers = {f.name: f.fn for f in page.fns.values()}
    private = tmp_path / "private.jpg"
    private.write_bytes(FACE_PHOTO.read_bytes())
    for name, args in [("on_photo", (str(private),)), ("on_video", (str(private),)),
                       ("on_webcam", (str(private), None))]:
        with pytest.raises(gr.Error) as refused:
            handlers[name](*args)
        assert "not uploaded" in refused.value.message, name
        assert str(tmp_path) not in refused.value.message
    assert private.read_bytes() == FACE_PHOTO.read_bytes()
