"""A bounded load test of `facekeypoints serve` on loopback.

    python bench/serve_load.py --model runs/photos/model.onnx            # 4 clients, 300 requests
    python bench/serve_load.py --model runs/photos --clients 1 2 8 --requests 200

Starts the server as a user does (its own process), warms it up, then for each number of
concurrent clients sends real photos (the youtube faces and the group photos of
../shared/data/photos, in turn) to POST /api/keypoints and records requests per second, median
and 99th-percentile latency, faces returned, errors, and the server's resident memory (RSS)
before and after each round: a server that keeps serving must not keep growing.
Writes bench/results/serve_load.csv.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

import httpx
from common import PHOTOS, RESULTS, free_port, start_server, write_table


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def round_of(url: str, photos: list[tuple[str, bytes]], clients: int,
                   requests: int) -> dict:
    latencies, faces, errors = [], 0, 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def client() -> None:
        nonlocal faces, errors
        async with httpx.AsyncClient(timeout=120) as http:
            while not queue.empty():
                name, data = photos[queue.get_nowait() % len(photos)]
                start = time.perf_counter()
                response = await http.post(url, files={"image": (name, data)})
                latencies.append(time.perf_counter() - start)
                if response.status_code == 200:
                    faces += len(response.json()["faces"])
                else:
                    errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - start
    latencies.sort()
    return {"clients": clients, "requests": requests, "requests_per_s": round(requests / wall, 1),
            "median_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
                            * 1000, 1),
            "faces": faces, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--clients", type=int, nargs="+", default=[4])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    files = sorted((PHOTOS / "youtube").glob("*.jpg"))[:40] + sorted((PHOTOS / "dlib")
                                                                    .glob("*.jpg"))
    photos = [(p.name, p.read_bytes()) for p in files]
    port = free_port()
    server = start_server(["--model", args.model], port)
    url = f"http://127.0.0.1:{port}/api/keypoints"
    rows = []
    try:
        asyncio.run(round_of(url, photos, 2, len(photos)))  # warm-up: every photo once
        for clients in args.clients:
            before = rss_mb(server.pid)
            row = asyncio.run(round_of(url, photos, clients, args.requests))
            row.update(rss_before_mb=round(before, 1), rss_after_mb=round(rss_mb(server.pid), 1),
                       photos=len(photos), model=Path(args.model).name)
            rows.append(row)
            print(row, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    write_table(rows, RESULTS / "serve_load.csv")


if __name__ == "__main__":
    main()
