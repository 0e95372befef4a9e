"""`facekeypoints serve` under a mixed load, on loopback, bounded in time (issue 35).

    python bench/serve_mixed_load.py                        # the built-in model, 16 clients, 60 s
    python bench/serve_mixed_load.py --model runs/photos/model.onnx --clients 16 --seconds 60

Starts the server as a user does (its own process, default limits: a memory budget of
1,536 MB), then CLIENTS threads each send, in turn, until SECONDS have passed:
a real photo (../shared/data/photos) to POST /api/keypoints; a short video (20 frames of a
real face) to POST /api/video; a webcam frame through the page's own protocol (upload, then
queue/join); and a large valid picture (a 36-megapixel 16-bit PNG, or a 24-megapixel JPEG) to
POST /api/keypoints. The server's resident memory (VmRSS, from /proc) is sampled every 0.1 s.
Prints one row per kind and a summary (requests/s, 5xx, peak and after-burst memory), and
writes bench/results/serve_mixed_load.csv.
"""

from __future__ import annotations

import argparse
import io
import json
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
from common import PHOTOS, RESULTS, free_port, start_server, write_table
from PIL import Image


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def inputs(folder: Path) -> dict[str, list[tuple[str, bytes]]]:
    """The payloads of each kind, made once."""
    photos = sorted((PHOTOS / "youtube").glob("*.jpg"))[:40] + sorted(
        (PHOTOS / "dlib").glob("*.jpg"))
    face = cv2.imread(str(PHOTOS / "youtube" / "Lincoln_Chafee_52.jpg"))
    clip = folder / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10,
                             (face.shape[1], face.shape[0]))
    for shift in range(20):
        writer.write(np.roll(face, shift, axis=1))
    writer.release()
    frame = np.full((480, 640, 3), 100, np.uint8)
    big_face = cv2.resize(face, None, fx=2, fy=2)
    frame[60:60 + big_face.shape[0], 150:150 + big_face.shape[1]] = big_face
    webcam = cv2.imencode(".jpg", frame)[1].tobytes()
    png16 = io.BytesIO()
    gradient = np.linspace(0, 65535, 6000, dtype=np.uint16)
    Image.fromarray(np.tile(gradient, (6000, 1))).save(png16, "PNG")
    jpeg = io.BytesIO()
    group = Image.open(PHOTOS / "dlib" / sorted(p.name for p in (PHOTOS / "dlib").glob("*.jpg"))[0])
    group.convert("RGB").resize((6000, 4000)).save(jpeg, "JPEG", quality=85)
    return {"photo": [(p.name, p.read_bytes()) for p in photos],
            "video": [("clip.avi", clip.read_bytes())],
            "webcam": [("frame.jpg", webcam)],
            "large": [("big16.png", png16.getvalue()), ("big.jpg", jpeg.getvalue())]}


def webcam_frame(http: httpx.Client, url: str, name: str, data: bytes) -> int:
    """One frame through the page's protocol (upload, queue/join of the webcam's stream, its
    first output), then the stream closed as a browser closes it: an open stream holds one of
    the handler's slots until its time limit. 200 for a drawn frame, else the error's code."""
    upload = http.post(f"{url}/gradio_api/upload", files={"files": (name, data)})
    if upload.status_code != 200:
        return upload.status_code
    session = secrets.token_hex(8)
    join = http.post(f"{url}/gradio_api/queue/join", json={
        "data": [{"path": upload.json()[0], "meta": {"_type": "gradio.FileData"}}, None],
        "fn_index": WEBCAM_FN, "session_hash": session, "event_data": None, "trigger_id": None})
    if join.status_code != 200:
        return join.status_code
    event = join.json()["event_id"]
    status = 599
    with http.stream("GET", f"{url}/gradio_api/queue/data",
                     params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_streaming":
                    status = 200
                    break
                if message.get("msg") == "process_completed":
                    status = 200 if message.get("success") else 422
                    break
    http.post(f"{url}/gradio_api/stream/{event}/close")
    return status


WEBCAM_FN = 2


def main() -> None:
    global WEBCAM_FN
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="default: the built-in model")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--bursts", type=int, default=1,
                        help="Rounds of SECONDS, the server left idle 5 s after each.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        payloads = inputs(Path(folder))
    port = free_port()
    server = start_server(["--model", args.model] if args.model else [], port)
    url = f"http://127.0.0.1:{port}"
    config = httpx.get(f"{url}/config").json()
    WEBCAM_FN = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "on_webcam")
    kinds = ["photo", "video", "webcam", "large"]
    results: list[tuple[int, str, int, float]] = []  # burst, kind, status, seconds
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            samples.append(rss_mb(server.pid))

    def client(index: int, until: float, burst: int) -> None:
        with httpx.Client(timeout=180) as http:
            turn = index
            while time.monotonic() < until:
                kind = kinds[turn % len(kinds)]
                name, data = payloads[kind][turn // len(kinds) % len(payloads[kind])]
                turn += 1
                start = time.perf_counter()
                try:
                    if kind == "webcam":
                        status = webcam_frame(http, url, name, data)
                    else:
                        route, field = ("video", "video") if kind == "video" else \
                            ("keypoints", "image")
                        status = http.post(f"{url}/api/{route}",
                                           files={field: (name, data)}).status_code
                except httpx.TransportError:
                    status = 599  # no answer at all: counted with the 5xx
                results.append((burst, kind, status, time.perf_counter() - start))

    rounds = []
    try:
        for i in range(len(kinds)):  # warm-up: each kind once
            with httpx.Client(timeout=180) as http:
                name, data = payloads[kinds[i]][0]
                if kinds[i] == "webcam":
                    webcam_frame(http, url, name, data)
                else:
                    route, field = ("video", "video") if kinds[i] == "video" else \
                        ("keypoints", "image")
                    http.post(f"{url}/api/{route}", files={field: (name, data)})
        time.sleep(5)
        idle = rss_mb(server.pid)
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM: the peak from now
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for burst in range(args.bursts):
            samples.clear()
            until = time.monotonic() + args.seconds
            started = time.perf_counter()
            threads = [threading.Thread(target=client, args=(i, until, burst))
                       for i in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=args.seconds + 300)
            wall = time.perf_counter() - started
            peak = max([*samples, rss_mb(server.pid, "VmHWM")])
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")
            time.sleep(5)  # idle again
            rounds.append((burst, wall, peak, rss_mb(server.pid)))
        stop.set()
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=60)

    rows = []
    for kind in kinds:
        mine = [r for r in results if r[1] == kind]
        times = sorted(r[3] for r in mine)
        codes: dict[int, int] = {}
        for _, _, status, _ in mine:
            codes[status] = codes.get(status, 0) + 1
        rows.append({"what": kind, "requests": len(mine),
                     "median_ms": round(statistics.median(times) * 1000) if times else None,
                     "max_ms": round(times[-1] * 1000) if times else None,
                     "statuses": " ".join(f"{c}:{n}" for c, n in sorted(codes.items())),
                     "5xx": sum(n for c, n in codes.items() if c >= 500)})
    for burst, wall, peak, after in rounds:
        mine = [r for r in results if r[0] == burst]
        rows.append({"what": f"burst {burst + 1}", "requests": len(mine),
                     "requests_per_s": round(len(mine) / wall, 2),
                     "5xx": sum(1 for r in mine if r[2] >= 500),
                     "rss_idle_mb": round(idle), "rss_peak_mb": round(peak),
                     "rss_after_mb": round(after), "clients": args.clients,
                     "seconds": args.seconds, "model": args.model or "builtin"})
    for row in rows:
        print(row, flush=True)
    write_table(rows, RESULTS / "serve_mixed_load.csv")


if __name__ == "__main__":
    main()
