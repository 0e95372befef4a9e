"""`facekeypoints serve` started as a user starts it, for the tests: ready once it says so.

The server prints its "serving ... on URL" line once its socket listens (connections wait in
its backlog from then on), so the tests wait for that line on its output, an event, instead of
asking it again and again until a clock runs out; it picks its own free port (`--port 0`) and
names it in that line."""

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVE = [sys.executable, "-m", "facekeypoints.cli", "serve"]
SERVING = re.compile(r"serving .* on (http://\S+?)/ ")


@contextmanager
def serve_process(*args: str, log: Path, wait_s: float = 600,
                  env: dict[str, str | None] | None = None
                  ) -> Iterator[tuple[subprocess.Popen, str]]:
    """`facekeypoints serve ARGS --port 0` in its own process: (process, URL) once it says it
    serves; all it prints goes to `log`; `env` sets (None: removes) variables of its environment,
    whose GRADIO_TEMP_DIR is removed: the server sets its own. `wait_s` bounds a hang, it is no
    time to wait: a server that exits first ends the wait at once. Stopped afterwards."""
    env = {"GRADIO_TEMP_DIR": None, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen([*SERVE, *args, "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={k: v for k, v in (os.environ | env).items() if v is not None})
    said: list[str] = []
    serving = threading.Event()

    def tee() -> None:
        with log.open("w") as out:
            for line in process.stdout:
                out.write(line)
                out.flush()
                match = SERVING.search(line)
                if match and not said:
                    said.append(match.group(1))
                    serving.set()
        serving.set()  # it exited: no line will come

    reader = threading.Thread(target=tee, name="serve-log", daemon=True)
    reader.start()
    try:
        serving.wait(wait_s)
        if not said:
            raise AssertionError(f"serve never said it serves (exit {process.poll()}): "
                                 f"{log.read_text()}")
        yield process, said[0]
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        reader.join(timeout=30)
