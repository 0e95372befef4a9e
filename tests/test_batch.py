"""`detect --engine ray`: the same files as `detect`, a killed job resumed, a two-node cluster.

These need ../shared/data (real photographs) and Ray (the `ray` extra, in `dev`). Every Ray
this file starts runs in a session of its own and is stopped by process id at the end; every
wait has a timeout (Ray's processes may ignore SIGTERM, and `ray.init` can hang)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from .cli_helpers import CLI, one_line_error, run, run_here
from .conftest import SHARED

YOUTUBE = SHARED / "photos" / "youtube"
OUTPUTS = ("keypoints.json", "keypoints.csv")


def _session_pids(sid: int) -> list[int]:
    """Every live process of a session (`start_new_session`), its leader's children included
    where they were re-parented."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry.name))
    return pids


def _stop_session(sid: int, timeout: float = 30.0) -> None:
    """SIGKILL to every process of the session, then wait until none is left."""
    deadline = time.monotonic() + timeout
    while pids := _session_pids(sid):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert time.monotonic() < deadline, f"processes {pids} outlived SIGKILL"
        time.sleep(0.1)


class Sessions:
    """Processes started for a test, each in a session of its own, all stopped at the end."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, args, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        _stop_session(proc.pid)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc)


@pytest.fixture
def sessions():
    started = Sessions()
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """38 real photos, a file that is no photo, and a short clip: about 40 inputs."""
    folder = tmp_path_factory.mktemp("inputs")
    for photo in sorted(YOUTUBE.glob("*.jpg"))[:38]:
        shutil.copy(photo, folder / photo.name)
    (folder / "broken.jpg").write_bytes(b"not a photo at all")
    rgb = cv2.imread(str(YOUTUBE / "Lincoln_Chafee_52.jpg"))
    writer = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10,
                             rgb.shape[1::-1])
    for shift in range(8):
        writer.write(np.roll(rgb, shift * 2, axis=1))
    writer.release()
    return folder


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> Path:
    """What single-process `detect` writes for them (exit code 3: one input is unreadable)."""
    out = tmp_path_factory.mktemp("reference")
    result = run_here("detect", inputs, "--out", out, "--progress", "off")
    assert result.returncode == 3, result.stderr
    return out


def _drawn(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in (out / "annotated").rglob("*")
                  if p.is_file())


def _same_outputs(out: Path, reference: Path) -> None:
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert _drawn(out) == _drawn(reference)
    assert f"annotated/{reference_folder(reference)}/clip.webm" in _drawn(out)


def reference_folder(reference: Path) -> str:
    """The inputs' folder name: outputs are named by their path below the inputs."""
    return Path(json.loads((reference / "keypoints.json").read_text())[0]["file"]).parent.name


def _parts(out: Path) -> list[dict]:
    """Each part: its name, and the index, node and process of each of its inputs."""
    parts = []
    for path in sorted((out / "parts").glob("part-*.json")):
        part = json.loads(path.read_text())
        n = len(part["inputs"])
        parts.append({"name": path.name, "index": [r["index"] for r in part["inputs"]],
                      "node": [part["node"]] * n, "pid": [part["pid"]] * n})
    return parts


def test_the_ray_engine_writes_what_detect_writes(inputs, reference, tmp_path):
    """Two workers, the work split into parts that each name the worker that wrote it:
    keypoints.json and keypoints.csv byte for byte as `detect`'s, the clip's CSV too, and the
    same exit code 3 for the file that is no photo. (Which worker takes which part is Ray's
    choice: one quick worker may take them all.)"""
    out = tmp_path / "ray"
    driver = subprocess.Popen([*CLI, "detect", str(inputs), "--out", str(out), "--engine",
                               "ray", "--workers", "2", "--progress", "lines"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = driver.communicate(timeout=240)
    finally:
        driver.kill()
    result = subprocess.CompletedProcess(driver.args, driver.returncode, "", stderr)
    assert result.returncode == 3, result.stderr
    assert "; 2 Ray worker(s);" in result.stderr
    assert "broken.jpg: not an image file" in result.stderr
    assert "1 of 40 input(s) could not be read" in result.stderr
    assert "detect on ray 40/40 files" in result.stderr
    assert "Traceback" not in result.stderr
    _same_outputs(out, reference)
    # every face carries its uncertainty by name, in the JSON and the CSV (NAME_u)
    faces = [f for r in json.loads((out / "keypoints.json").read_text())
             if isinstance(r["faces"], list) for f in r["faces"]]
    assert faces and all(list(f["uncertainty"]) == list(f["keypoints"]) for f in faces)
    with open(out / "keypoints.csv", newline="") as f:
        assert all(float(row["nose_tip_u"]) > 0 for row in csv.DictReader(f))
    parts = _parts(out)
    indices = [i for part in parts for i in part["index"]]
    assert sorted(indices) == list(range(40))
    manifest = json.loads((out / "parts" / "manifest.json").read_text())
    assert len(parts) == len(manifest["tasks"]) > 2  # the work was split, a part per task
    # every part names the worker that wrote it: a process of the pool, not the driver
    pids = {pid for part in parts for pid in part["pid"]}
    assert 1 <= len(pids) <= 2 and driver.pid not in pids, pids
    assert all(isinstance(n, str) and len(n) > 20 for part in parts for n in part["node"])
    assert [e["file"] for e in manifest["inputs"]] == \
        [r["file"] for r in json.loads((reference / "keypoints.json").read_text())]
    # every face carries the head's pose (the built-in model is mesh-based), on Ray as here
    faces = [f for r in json.loads((out / "keypoints.json").read_text())
             if isinstance(r["faces"], list) for f in r["faces"]]
    assert faces and all(set(f["pose"]) == {"yaw", "pitch", "roll"} for f in faces)


def test_a_killed_driver_resumes_without_losing_or_repeating_a_photo(inputs, reference,
                                                                     tmp_path, sessions):
    """The driver (and the Ray it started) killed while its one worker waits at a gate in
    front of the clip, the job's last part: the parts before it are kept (one worker takes the
    parts in the order Ray queued them), the clip's is not. `--resume` keeps those parts, runs
    the clip, and the merge gives `detect`'s files. Changed settings and a second run without
    --resume are refused before Ray starts."""
    out = tmp_path / "ray"
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
    lease = sessions.start([sys.executable, "-c", GATE, str(inputs / "clip.avi")], **pipes)
    _said(lease, "held")
    driver = sessions.start([*CLI, "detect", str(inputs), "--out", str(out), "--engine", "ray",
                             "--workers", "1", "--progress", "off"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _said(lease, "asked")  # the worker opens the clip and waits there
    sessions.stop(driver)
    lease.stdin.close()
    _said(lease, "let go")
    kept = {p["name"]: p["index"] for p in _parts(out)}
    manifest = json.loads((out / "parts" / "manifest.json").read_text())
    clip = [e["file"] for e in manifest["inputs"]].index(str(inputs / "clip.avi"))
    assert manifest["tasks"][-1] == [clip]  # a video is a part of its own; it sorts last
    assert sorted(kept.values()) == manifest["tasks"][:-1]
    assert not (out / "keypoints.json").exists()

    one_line_error(run_here("detect", inputs, "--out", out, "--engine", "ray"), "--resume")
    one_line_error(run_here("detect", inputs, "--out", out, "--engine", "ray", "--resume",
                            "--detector", "hog"),
                   "was begun with --detector blazeface, not --detector hog")
    done = subprocess.run([*CLI, "detect", str(inputs), "--out", str(out), "--engine", "ray",
                           "--workers", "1", "--resume", "--progress", "lines"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 3, done.stderr
    assert f"{len(kept)} done before" in done.stderr
    # the progress counts the faces of the parts kept from before too
    faces = sum(r["faces"] if isinstance(r["faces"], int) else len(r["faces"])
                for r in json.loads((reference / "keypoints.json").read_text()))
    last = [line for line in done.stderr.splitlines() if line.startswith("detect on ray")][-1]
    assert last.startswith("detect on ray 40/40") and f"faces {faces}" in last, last
    _same_outputs(out, reference)
    again = {p["name"]: p["index"] for p in _parts(out)}
    assert {name: again[name] for name in kept} == kept  # the first run's parts were kept
    assert sorted(i for part in again.values() for i in part) == list(range(40))
    merged = run("detect", inputs, "--out", out, "--engine", "ray", "--resume")
    assert merged.returncode == 3 and "Ray worker(s)" not in merged.stderr  # no Ray: a merge
    _same_outputs(out, reference)


def _node_ip() -> str:
    import ray._private.services

    return ray._private.services.get_node_ip_address()


# Holds the head node's one CPU (a placeholder actor) until stdin closes: the job's workers can
# only start on the second node until then. Prints the head's node id once seated.
SEAT = """
import ray, sys
ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)

@ray.remote(num_cpus=1, resources={'node:__internal_head__': 0.001})
class Seat:
    def node(self):
        return ray.get_runtime_context().get_node_id()

seat = Seat.remote()
print('seated', ray.get(seat.node.remote()), flush=True)
sys.stdin.readline()
"""

# A gate in front of one input: a write lease (fcntl F_SETLEASE) makes any other process that
# opens the file wait in open() until the lease is let go (stdin closes), and tells this one
# (SIGIO) that someone is waiting. The kernel breaks a lease that is not let go in
# /proc/sys/fs/lease-break-time (45 s): the test must act on "asked" within that.
GATE = """
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
signal.signal(signal.SIGIO, lambda *_: print('asked', flush=True))
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print('held', flush=True)
sys.stdin.readline()
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
print('let go', flush=True)
"""


def _said(proc: subprocess.Popen, word: str, timeout: float = 180) -> str:
    """The next line `proc` prints, which must start with `word`: an event to wait for; the
    bound only ends a hang."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    assert line.startswith(word), f"expected {word!r} in {timeout:.0f} s, got {line!r}"
    return line


def test_a_two_node_cluster_runs_a_job_and_survives_a_node_killed(tmp_path, sessions):
    """A head and a second node (`ray start`, token authentication on, as Ray 2.60 has it): a
    job over every youtube photo and one more behind a gate. The head's CPU is held at first,
    so the second node's worker takes the parts; it is killed while it waits at the gate (the
    job cannot have ended), the head then takes over its unfinished part, and the job ends with
    every photo once, the same files as `detect`. Every step waits for an event: how fast this
    machine works decides nothing."""
    env = {**os.environ, "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": f"facekeypoints-test-{secrets.token_hex(16)}",
           # the head notices a dead node in about 2 s instead of 30
           "RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4"}
    ip, port = _node_ip(), 6400 + os.getpid() % 500
    ray_start = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block",
                 "--num-cpus", "1", "--disable-usage-stats"]
    sessions.start([*ray_start, "--head", f"--port={port}", "--include-dashboard=false"],
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_nodes(ip, port, 1, env)
    second = sessions.start([*ray_start, f"--address={ip}:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_nodes(ip, port, 2, env)
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
    seat = sessions.start([sys.executable, "-c", SEAT, f"{ip}:{port}"], env=env, **pipes)
    head = _said(seat, "seated").split()[1]
    gate = tmp_path / "gate.jpg"  # last: in the last part, after the photos the others hold
    shutil.copy(YOUTUBE / "Lincoln_Chafee_52.jpg", gate)
    lease = sessions.start([sys.executable, "-c", GATE, str(gate)], **pipes)
    _said(lease, "held")

    out = tmp_path / "cluster"
    # 40 photos and the gate: seven parts of six, the gate's the last
    inputs = [*map(str, sorted(YOUTUBE.glob("*.jpg"))[:40]), str(gate)]
    job = sessions.start([*CLI, "detect", *inputs, "--out", str(out), "--engine", "ray",
                          "--address", f"{ip}:{port}", "--workers", "2", "--no-draw",
                          "--progress", "off"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _said(lease, "asked")  # a worker opens the gate and waits there
    before = _parts(out)
    assert before and job.poll() is None
    assert {n for part in before for n in part["node"]} - {head}, "no part from the second node"
    assert head not in {n for part in before for n in part["node"]}, "the head's CPU was held"
    assert {_session_of(pid) for part in before for pid in part["pid"]} == {second.pid}
    sessions.stop(second)  # its worker, waiting at the gate, with it
    lease.stdin.close()
    _said(lease, "let go")
    seat.stdin.close()  # the head's CPU is free for a worker of the job
    _, err = job.communicate(timeout=300)
    assert job.returncode == 0, err
    parts = _parts(out)
    assert sorted(i for part in parts for i in part["index"]) == list(range(len(inputs)))
    assert head in {n for part in parts for n in part["node"]}  # the killed node's part, redone
    expected = run_here("detect", *inputs, "--out", tmp_path / "one", "--no-draw",
                        "--progress", "off")
    assert expected.returncode == 0, expected.stderr
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name


def _session_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])


def _wait_for_nodes(ip: str, port: int, count: int, env: dict) -> None:
    code = ("import ray, time, sys\n"
            f"ray.init(address='{ip}:{port}', logging_level='ERROR', log_to_driver=False)\n"
            f"while len([n for n in ray.nodes() if n['Alive']]) < {count}: time.sleep(0.2)\n")
    deadline = time.monotonic() + 600  # a bound on a hang: a loaded machine starts Ray slowly
    while True:
        probe = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                               text=True, timeout=600)
        if probe.returncode == 0:
            return
        assert time.monotonic() < deadline, probe.stderr[-2000:]
        time.sleep(1)


def test_a_copied_builtin_folder_reaches_the_workers_with_its_calibration(tmp_path):
    """A copy of a built-in model's folder travels to the workers as bytes with its
    uncertainty's calibration: their faces carry the uncertainty the driver's do."""
    import facekeypoints as fk
    from facekeypoints.batch.model_spec import ModelSpec
    from facekeypoints.inference.loading import builtin_path

    shutil.copytree(builtin_path(), tmp_path / "mine")
    spec, predictor = ModelSpec.of(str(tmp_path / "mine"))
    assert sorted(spec.files) == ["model.onnx", "uncertainty.json"]
    worker = spec.load()
    assert predictor.calibration is not None and worker.calibration is not None
    photo = SHARED / "photos" / "youtube" / "Lincoln_Chafee_52.jpg"
    (here,), (there,) = (fk.Landmarker(m).detect(photo) for m in (predictor, worker))
    np.testing.assert_allclose(there.uncertainty, here.uncertainty)


def test_urls_in_and_object_storage_out_through_pyarrow(inputs, tmp_path, tiny_onnx):
    """Inputs named by file:// URL (read through pyarrow, each copied for the pipeline) and
    results in an object store (Arrow's in-memory one: every write one upload, the drawings
    staged and uploaded): the same files as `detect` on the folder, the URLs kept as names.
    A user's ONNX model travels as bytes. The workers run here, without Ray."""
    from pyarrow import fs

    from facekeypoints.batch.model_spec import ModelSpec
    from facekeypoints.batch.store import Store, download, list_inputs
    from facekeypoints.photos.detect import job_settings
    from facekeypoints.photos.job import Manifest, fingerprint_of
    from facekeypoints.photos.local_job import run_detect
    from facekeypoints.photos.parts import PartWorker, merge
    from facekeypoints.photos.pipeline import FacePipeline

    spec, predictor = ModelSpec.of(tiny_onnx)
    assert list(spec.files) == ["model.onnx"]
    pipeline = FacePipeline(spec.load())
    run_detect([str(inputs)], pipeline, tmp_path / "one", log=lambda line: None, progress=False)
    settings = job_settings(pipeline, draw=True, smooth=True)
    arguments = [f"file://{inputs}", f"file://{inputs}/missing"]
    entries, problems = list_inputs(arguments)
    assert problems == [f"file://{inputs}/missing: no such file or folder"]
    manifest = Manifest.plan(entries, problems, arguments, spec.name,
                             fingerprint_of(pipeline.model), settings, workers=2)
    store = Store("mock:///job")
    assert store.local is None
    worker = PartWorker(pipeline, settings, store, fetch=download)
    for task, indices in enumerate(manifest.tasks):
        worker(task, [{"index": i, **manifest.inputs[i]} for i in indices])
    summary = merge(store, manifest, predictor.columns)
    assert summary["files"] == 40 and summary["unreadable"] == 1
    for name in OUTPUTS:
        text = store.read_bytes(name).decode()
        assert f'"file://{inputs}/' in text or f"file://{inputs}/" in text
        assert text.replace("file://", "") == (tmp_path / "one" / name).read_text(), name
    uploaded = store.fs.get_file_info(fs.FileSelector(store.path("annotated"), recursive=True))
    assert sorted(i.path[len(store.root) + 1:] for i in uploaded
                  if i.type == fs.FileType.File) == _drawn(tmp_path / "one")


def test_keras_models_and_unreachable_clusters_are_refused_in_one_line(inputs, tmp_path,
                                                                       tiny_run):
    """Workers never load TensorFlow: a Keras model is refused with the export command (an
    exported run folder or .keras file loads its ONNX file, as `detect` does); an
    address where nothing listens is refused at once (ray.init would retry for minutes)."""
    out, keras_file = tmp_path / "ray", tmp_path / "net.keras"  # no export beside it
    shutil.copy(tiny_run.path / "model.keras", keras_file)
    one_line_error(run_here("detect", inputs, "--out", out, "--engine", "ray", "--model",
                            keras_file), f"facekeypoints export {keras_file}")
    # a process of its own: this one would import Ray and keep its logging (a later in-process
    # Ray job would skip the reachability check once ray.init has run)
    one_line_error(run("detect", inputs, "--out", out, "--engine", "ray", "--address",
                       "127.0.0.1:1"), "--address 127.0.0.1:1: no Ray cluster answers")
    one_line_error(run_here("detect", inputs, "--out", out, "--workers", "2"),
                   "--workers goes with --engine ray")
    assert not out.exists()
