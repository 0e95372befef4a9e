"""What issue 35's memory attacks cost a running `facekeypoints serve`, on loopback.

    python bench/serve_attacks.py                     # this checkout's server
    PYTHONPATH=/path/to/other/src python bench/serve_attacks.py --label before

Starts the server as a user does (the built-in model; `--max-pixels 1000000` for the webcam
case, as in the issue, defaults otherwise) and sends, one case at a time: a 12000x12000 PNG
(140 KB) as a webcam frame through the page's protocol; a 16-bit 6324x6324 PNG (78 KB) to the
API; 8 API requests and 4 page requests of 36-megapixel pictures at once, three times. For
each: the answers, seconds, and the server's peak (VmHWM, reset before the case) and resident
memory after, from /proc. Writes bench/results/serve_attacks_LABEL.csv.
"""

from __future__ import annotations

import argparse
import io
import secrets
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from common import RESULTS, write_table
from PIL import Image
from serve_mixed_load import free_port, rss_mb, start_server


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def webcam(url: str, data: bytes, fn: int) -> str:
    """A frame through the page's webcam handler: drawn, busy (skipped), or refused."""
    with httpx.Client(timeout=300) as http:
        path = http.post(f"{url}/gradio_api/upload", files={"files": ("f.png", data)}).json()[0]
        session = secrets.token_hex(8)
        join = http.post(f"{url}/gradio_api/queue/join", json={
            "data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, None],
            "fn_index": fn, "session_hash": session, "event_data": None, "trigger_id": None})
        event = join.json()["event_id"]
        answer = "no answer"
        with http.stream("GET", f"{url}/gradio_api/queue/data",
                         params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if '"process_streaming"' in line:
                    answer = "busy" if "busy" in line else "drawn"
                    break
                if '"process_completed"' in line:
                    answer = "refused" if '"success":false' in line else "done"
                    break
        http.post(f"{url}/gradio_api/stream/{event}/close")
        return answer


def case(rows: list[dict], label: str, what: str, pid: int, work) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = rss_mb(pid)
    start = time.perf_counter()
    answers = work()
    seconds = time.perf_counter() - start
    time.sleep(3)
    row = {"server": label, "case": what, "answers": answers, "seconds": round(seconds, 1),
           "rss_before_mb": round(before), "peak_mb": round(rss_mb(pid, "VmHWM")),
           "rss_after_mb": round(rss_mb(pid))}
    print(row, flush=True)
    rows.append(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after")
    args = parser.parse_args()
    rows: list[dict] = []
    huge = png(np.zeros((12000, 12000), np.uint8))
    deep = png(np.full((6324, 6324), 40000, np.uint16))
    big = png(np.tile(np.linspace(0, 65535, 6000, dtype=np.uint16), (6000, 1)))

    port = free_port()
    server = start_server(["--max-pixels", "1000000"], port)
    url = f"http://127.0.0.1:{port}"
    try:
        fn = next(d["id"] for d in httpx.get(f"{url}/config").json()["dependencies"]
                  if d.get("api_name") == "on_webcam")
        case(rows, args.label, "12000x12000 PNG as a webcam frame, --max-pixels 1000000",
             server.pid, lambda: webcam(url, huge, fn))
    finally:
        server.terminate()
        server.wait(timeout=60)

    port = free_port()
    server = start_server([], port)
    url = f"http://127.0.0.1:{port}"
    try:
        fn = next(d["id"] for d in httpx.get(f"{url}/config").json()["dependencies"]
                  if d.get("api_name") == "on_webcam")

        def api(data: bytes) -> int:
            return httpx.post(f"{url}/api/keypoints", files={"image": ("p.png", data)},
                              timeout=300).status_code

        case(rows, args.label, "16-bit 6324x6324 PNG to the API", server.pid,
             lambda: str(api(deep)))

        def burst() -> str:
            answers: list[str] = []
            threads = [threading.Thread(target=lambda: answers.append(str(api(big))))
                       for _ in range(8)]
            threads += [threading.Thread(target=lambda: answers.append(webcam(url, big, fn)))
                        for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=600)
            return " ".join(sorted(answers))

        for i in range(3):
            case(rows, args.label, f"8 API + 4 page requests of 36 MP at once, burst {i + 1}",
                 server.pid, burst)
    finally:
        server.terminate()
        server.wait(timeout=60)
    write_table(rows, RESULTS / f"serve_attacks_{args.label}.csv")


if __name__ == "__main__":
    main()
