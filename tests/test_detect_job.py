"""`detect` as a job that keeps every input's result: odd files and clashing names on both
engines, a killed job resumed to the same bytes, folders guarded, one-line stops, faces filtered.

These need ../shared/data (real photographs), Ray (the `ray` extra, in `dev`) and Debian's
Chromium for the drawn video. Every process a test starts runs in a session of its own and is
stopped by process id; every wait has a timeout."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from facekeypoints.photos import reading

from .cli_helpers import CLI, one_line_error, run, run_here
from .conftest import SHARED
from .odd_inputs import BROKEN, FACELESS, FACES, PHOTO, make_odd_folder
from .paused import Paused
from .test_batch import GATE, Sessions, _said, _stop_session

YOUTUBE = SHARED / "photos" / "youtube"
GROUP = SHARED / "photos" / "dlib"
OUTPUTS = ("keypoints.json", "keypoints.csv")


@pytest.fixture
def sessions():
    started = Sessions()
    yield started
    started.stop_all()


def _clip(path: Path, photo: Path, frames: int = 4) -> None:
    rgb = cv2.imread(str(photo))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, rgb.shape[1::-1])
    for shift in range(frames):
        writer.write(np.roll(rgb, shift * 2, axis=1))
    writer.release()


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A photo library as people have them: odd files beside good ones, every card's
    IMG_0001.jpg, two folders each with its clip.avi, photos folders deep, hidden files."""
    root = tmp_path_factory.mktemp("library")
    make_odd_folder(root / "odd")
    for folder, photo in (("same1", PHOTO), ("same2", YOUTUBE / "Alfredo_di_Stefano_00.jpg")):
        (root / folder).mkdir()
        shutil.copy(photo, root / folder / "IMG_0001.jpg")
        _clip(root / folder / "clip.avi", photo)
    deep = root / "photos" / "2019" / "june"
    deep.mkdir(parents=True)
    shutil.copy(YOUTUBE / "Chris_Cooper_42.jpg", deep / "beach.jpg")
    (root / "photos" / ".thumbnails").mkdir()
    shutil.copy(PHOTO, root / "photos" / ".thumbnails" / "beach.jpg")
    shutil.copy(PHOTO, root / "photos" / ".hidden.jpg")
    return root


def _arguments(tree: Path) -> list[str]:
    # a file named twice (once inside its folder) is read once
    return [str(tree / n) for n in ("odd", "same1", "same2", "photos")] + \
        [str(tree / "same1" / "IMG_0001.jpg")]


def _drawn(out: Path) -> list[str]:
    return sorted(p.relative_to(out / "annotated").as_posix()
                  for p in (out / "annotated").rglob("*") if p.is_file())


def test_a_library_of_odd_and_clashing_files_keeps_every_result_on_both_engines(tree,
                                                                                tmp_path):
    local = run_here("detect", *_arguments(tree), "--out", tmp_path / "local", "--workers",
                     "1", "--engine", "local")
    one_line_error(local, "--workers goes with --engine ray")  # (the option, not the job)
    local = run_here("detect", *_arguments(tree), "--out", tmp_path / "local")
    assert local.returncode == 3, local.stderr
    assert "Traceback" not in local.stderr
    records = json.loads((tmp_path / "local" / "keypoints.json").read_text())
    names = [Path(r["file"]).relative_to(tree).as_posix() for r in records]
    expected = sorted([f"odd/{n}" for n in (*FACES, *BROKEN, *FACELESS)]) + [
        "same1/IMG_0001.jpg", "same1/clip.avi", "same2/IMG_0001.jpg", "same2/clip.avi",
        "photos/2019/june/beach.jpg"]
    assert names == expected  # every input once, in order; hidden ones skipped
    by_name = dict(zip(names, records, strict=True))
    for name in BROKEN:  # its own error, naming it, and the job went on
        assert by_name[f"odd/{name}"]["error"].startswith(str(tree / "odd" / name)), name
    for name in (*FACES, "same1/IMG_0001.jpg", "same2/IMG_0001.jpg",
                 "photos/2019/june/beach.jpg"):
        record = by_name[name if "/" in name else f"odd/{name}"]
        assert "error" not in record and len(record["faces"]) == 1, name
    for name in FACELESS:
        assert by_name[f"odd/{name}"]["faces"] == [] and "error" not in by_name[f"odd/{name}"]
    assert f"{len(BROKEN)} of {len(expected)} input(s) could not be read" in local.stderr
    # nothing overwritten: each clip's frames and each IMG_0001's drawing are its own
    rows = (tmp_path / "local" / "keypoints.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:4] == ["file", "frame", "time", "face"]
    for clip in ("same1/clip.avi", "same2/clip.avi"):
        frames = [r.split(",") for r in rows[1:] if r.startswith(str(tree / clip))]
        assert [(f[1], f[2]) for f in frames] == [(str(i), f"{i / 10:.3f}") for i in range(4)]
        assert by_name[clip] == {"file": str(tree / clip), "frames": 4, "faces": 4,
                                 "detections": 1}
    drawn = _drawn(tmp_path / "local")
    assert {"same1/IMG_0001.jpg", "same2/IMG_0001.jpg", "same1/clip.webm", "same2/clip.webm",
            "photos/2019/june/beach.jpg", "odd/good.jpg", "odd/deep16.jpg"} <= set(drawn)
    first, second = (cv2.imread(str(tmp_path / "local" / "annotated" / f"same{i}" /
                                    "IMG_0001.jpg")) for i in (1, 2))
    assert first.shape != second.shape  # two photos, not one drawn twice

    # a job done, resumed: the file named twice does not make the plan differ; only a merge
    again = run_here("detect", *_arguments(tree), "--out", tmp_path / "local", "--resume")
    assert again.returncode == 3 and "done before" in again.stderr, again.stderr
    assert (tmp_path / "local" / "keypoints.json").read_text() == json.dumps(records, indent=1) \
        + "\n"

    ray = run("detect", *_arguments(tree), "--out", tmp_path / "ray", "--engine", "ray",
              "--workers", "2")
    assert ray.returncode == 3, ray.stderr
    for name in OUTPUTS:
        assert (tmp_path / "ray" / name).read_bytes() == \
            (tmp_path / "local" / name).read_bytes(), name
    assert _drawn(tmp_path / "ray") == drawn


def test_a_local_job_killed_part_way_resumes_to_the_same_bytes(tmp_path):
    """SIGTERM once the first part is kept: one line saying how many inputs are kept; SIGKILL
    part-way through the resumed job; a re-run without --resume, or with other settings, is
    refused; --resume (from another folder, the inputs spelled otherwise) finishes with the
    files of a run never killed, its progress counting the faces found before the kills too.
    While a job holds the folder, another is refused."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for copy in range(2):  # 192 photos: four parts of 48, a kill can land inside one
        for photo in sorted(YOUTUBE.glob("*.jpg"))[:96]:
            (photos / f"{copy}-{photo.name}").symlink_to(photo)
    count = len(list(photos.iterdir()))
    whole = run_here("detect", photos, "--out", tmp_path / "whole", "--no-draw", "--progress",
                     "off")
    assert whole.returncode == 0, whole.stderr

    out = tmp_path / "killed"
    with Paused.detect([photos, "--out", out, "--no-draw", "--progress", "off"], parts=1,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as paused:
        paused.wait()  # its first part kept
        os.kill(paused.proc.pid, signal.SIGTERM)
        _, err = paused.proc.communicate(timeout=60)
    job = paused.proc
    manifest = json.loads((out / "parts" / "manifest.json").read_text())
    parts = sorted((out / "parts").glob("part-*.json"))
    inputs_kept = sum(len(json.loads(p.read_text())["inputs"]) for p in parts)
    assert job.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == (
        f"facekeypoints: interrupted: {inputs_kept} of {count} file(s) are kept in {out}/parts; "
        "add --resume to finish the job")
    with Paused.detect([photos, "--out", out, "--no-draw", "--progress", "off", "--resume"],
                       parts=1, files=2, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL) as paused:
        paused.wait()  # one part more kept, and two inputs of the next found
        os.kill(paused.proc.pid, signal.SIGKILL)
    kept = sorted(p.name for p in (out / "parts").glob("part-*.json"))
    assert len(parts) == 1 and len(kept) == 2 < len(manifest["tasks"])
    assert not (out / "keypoints.json").exists()

    one_line_error(run_here("detect", photos, "--out", out), "holds a detect job already",
                   "--resume")
    one_line_error(run_here("detect", photos, "--out", out, "--resume", "--fast"),
                   "was begun with no --fast, not --fast")
    # the same model on the other runtime gives other last digits: refused, and said so (a
    # process of its own: this one keeps the model it opened already, on its runtime)
    one_line_error(run("detect", photos, "--out", out, "--resume", "--no-draw",
                       env={"FACEKEYPOINTS_RUNTIME": "onnx"}),
                   "this model differs", "or runs on another runtime")
    with open(out / "parts" / ".lock", "a") as held:  # as a running job holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        one_line_error(run_here("detect", photos, "--out", out, "--resume", "--no-draw"),
                       "a detect job is running in this folder")
    # the job named them by their absolute paths
    done = run_here("detect", "photos", "--out", "killed", "--resume", "--no-draw",
                    "--progress", "lines", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    faces = sum(len(r["faces"]) for r in json.loads((out / "keypoints.json").read_text()))
    last = [line for line in done.stderr.splitlines() if line.startswith("detect ")][-1]
    assert last.startswith(f"detect {count}/{count} files") and f"faces {faces}" in last, last
    assert sorted(p.name for p in (out / "parts").glob("part-*.json"))[:len(kept)] == kept


def test_sigterm_stops_a_ray_job_in_one_line_and_the_local_engine_finishes_it(tmp_path,
                                                                             sessions):
    """The job is stopped while its worker waits at a gate in front of its last photo (see
    test_batch.GATE), so it cannot have ended, however fast this machine works."""
    gate = tmp_path / "gate.jpg"
    shutil.copy(YOUTUBE / "Lincoln_Chafee_52.jpg", gate)
    photos = [*sorted(YOUTUBE.glob("*.jpg"))[:39], gate]  # four parts, the gate in the last
    out = tmp_path / "ray"
    lease = sessions.start([sys.executable, "-c", GATE, str(gate)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    _said(lease, "held")
    job = sessions.start([*CLI, "detect", *map(str, photos), "--out", str(out), "--engine",
                          "ray", "--workers", "1", "--no-draw", "--progress", "off"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _said(lease, "asked")  # a worker opens the gate and waits there: the job goes on
    os.kill(job.pid, signal.SIGTERM)
    _, err = job.communicate(timeout=120)
    _stop_session(job.pid)  # whatever Ray left of it
    lease.stdin.close()
    _said(lease, "let go")
    assert job.returncode == 130, err
    assert "SIGTERM received" not in err and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("facekeypoints: interrupted: ") and "add --resume" in last, last
    # either engine finishes the other's job
    done = run_here("detect", *photos, "--out", out, "--resume", "--no-draw", "--progress",
                    "lines")
    assert done.returncode == 0, done.stderr
    assert "done before; going on" in done.stderr
    expected = run_here("detect", *photos, "--out", tmp_path / "one", "--no-draw",
                        "--progress", "off")
    assert expected.returncode == 0, expected.stderr
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name


def test_out_mistakes_and_used_folders_are_one_line(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    one_line_error(run_here("detect", PHOTO, "--out", a_file), f"--out {a_file}: is a file")
    one_line_error(run_here("detect", PHOTO, "--out", a_file / "sub"), f"--out {a_file / 'sub'}")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"x")
    one_line_error(run_here("detect", PHOTO, "--out", mine), "holds other files")
    one_line_error(run_here("detect", PHOTO, "--out", tmp_path / "new", "--resume"),
                   "does not exist")
    one_line_error(run_here("detect", PHOTO, "--resume"), "--resume needs --out")
    one_line_error(run_here("detect", tmp_path / "gone.jpg", "--out", tmp_path / "o"),
                   f"nothing to process: {tmp_path / 'gone.jpg'}: no such file or folder")
    assert not (tmp_path / "o").exists() and not (tmp_path / "new").exists()
    # a job that never begins leaves no empty detections folder behind, however often retried
    for _ in range(2):
        one_line_error(run_here("detect", tmp_path / "gone.jpg", cwd=tmp_path),
                       "nothing to process")
    assert not list(tmp_path.glob("detections*"))
    # without --out, each run takes a free folder, two started together too: nothing is mixed
    both = [subprocess.Popen([*CLI, "detect", str(PHOTO), "--no-draw"], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    for job in both:
        _, err = job.communicate(timeout=300)
        assert job.returncode == 0, err
    assert (tmp_path / "detections" / "keypoints.json").is_file()
    assert (tmp_path / "detections-2" / "keypoints.json").is_file()


def test_max_faces_min_score_and_a_face_check_for_models_without_a_face_score(photo_onnx,
                                                                             tmp_path):
    """A `photos` net has no face score: the face mesh checks each find, so BlazeFace's box
    across two people (0.57) is no face; without the check it is one."""
    from facekeypoints.inference import loading
    from facekeypoints.photos import FacePipeline
    from facekeypoints.photos.scores import load_truth

    model = loading.load(photo_onnx)
    photo = reading.read_photo(GROUP / "2007_007763.jpg")
    truth = [t for t in load_truth(GROUP / "keypoints15.csv") if t.file == "2007_007763.jpg"]
    checked = FacePipeline(model).faces_in(photo)
    unchecked = FacePipeline(model, face_check=False).faces_in(photo)
    assert len(checked) == len(truth) == 7
    assert len(unchecked) == 8 and min(f.box.score for f in unchecked) < 0.6
    scores = sorted((f.box.score for f in checked), reverse=True)
    best = FacePipeline(model, max_faces=2).faces_in(photo)
    assert sorted((f.box.score for f in best), reverse=True) == scores[:2]
    high = FacePipeline(model, min_score=0.88).faces_in(photo)
    assert sorted((f.box.score for f in high), reverse=True) == [s for s in scores if s >= 0.88]
    done = run_here("detect", GROUP / "2007_007763.jpg", "--model", photo_onnx, "--max-faces",
                    "1", "--out", tmp_path / "one")
    assert done.returncode == 0, done.stderr
    assert len(json.loads((tmp_path / "one" / "keypoints.json").read_text())[0]["faces"]) == 1


def test_the_drawn_video_plays_in_a_browser(tree, tmp_path):
    from .test_browser import _page

    out = tmp_path / "out"
    assert run_here("detect", tree / "same1" / "clip.avi", "--out", out).returncode == 0
    video = out / "annotated" / "clip.webm"
    page = tmp_path / "play.html"
    page.write_text(f'<video id="v" src="{video.as_uri()}" muted></video>')
    with _page(page.as_uri()) as browser:
        state = browser.evaluate("""() => new Promise(done => {
            const v = document.getElementById('v');
            const report = () => done({width: v.videoWidth, duration: v.duration,
                                       error: v.error && v.error.code});
            if (v.readyState >= 2) report();
            v.onloadeddata = report; v.onerror = report;
            setTimeout(report, 10000);
        })""")
    height, width = cv2.imread(str(PHOTO)).shape[:2]
    assert state["error"] is None and width - 1 <= state["width"] <= width, state  # VP8: even
    assert state["duration"] == pytest.approx(0.4, abs=0.15), state


def test_help_names_what_each_command_takes_and_the_package_exports_only_its_api():
    import facekeypoints as fk

    top = run("--help").stdout
    assert "detect" in top.split("Commands:")[0] and "serve" in top.split("Commands:")[0]
    detect = run("detect", "--help").stdout
    assert "15 keypoints" not in detect and "--resume" in detect and "--max-faces" in detect
    assert "about 0.7 of the time" in detect
    assert "builtin68" in run("detect", "--model", "nope", "x.jpg").stderr
    assert not hasattr(fk, "os") and "TYPE_CHECKING" not in dir(fk)


def test_dense_schemes_are_drawn_as_points_not_a_blob():
    from facekeypoints.inference import loading
    from facekeypoints.photos import FacePipeline
    from facekeypoints.photos.outputs import draw

    rgb = reading.read_photo(PHOTO)  # a face about 80 px wide
    (face,) = FacePipeline(loading.load("mesh468")).faces_in(rgb)
    b = face.box
    window = (slice(int(b.top), int(b.top + b.height)), slice(int(b.left), int(b.left + b.width)))

    def red(bgr: np.ndarray) -> float:
        bgr = bgr[window]
        return float(((bgr[..., 2] > 200) & (bgr[..., 1] < 60) & (bgr[..., 0] < 60)).mean())

    painted = red(draw(rgb, [face])) - red(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert 0.02 < painted < 0.25, painted  # every point shows, and the face shows between them


def test_a_plan_is_created_once_and_a_second_job_into_its_folder_is_refused(tmp_path):
    """Two jobs that find the same empty --out at once: the file system lets one create the
    plan; the other is refused in one line, and the first one's plan is whole."""
    from facekeypoints.errors import UserError
    from facekeypoints.photos.job import MANIFEST, Manifest, open_folder

    entries = [{"file": str(PHOTO), "size": 1, "mtime_ns": 1}]
    plans = [Manifest.plan(entries, [], [str(PHOTO)], "builtin", fingerprint, {})
             for fingerprint in ("first", "second")]
    folders = [open_folder(tmp_path / "out", resume=False) for _ in plans]  # both pass
    plans[0].create(folders[0])
    with pytest.raises(UserError, match="another detect job began in this folder"):
        plans[1].create(folders[1])
    assert json.loads((tmp_path / "out" / MANIFEST).read_text())["fingerprint"] == "first"


def test_names_that_trip_naive_code_lose_nothing(tmp_path):
    """A name that is not UTF-8, one of 240 bytes, names that clash but for the suffix or the
    case, a link to nothing, and an earlier job's folder among the photos: every face kept,
    every drawn copy its own, the link named even with the progress off."""
    lib = tmp_path / "lib"
    lib.mkdir()
    latin = os.fsdecode(bytes(lib) + b"/caf\xe9.jpg")
    shutil.copy(PHOTO, latin)
    long = lib / ("x" * 240 + ".jpg")
    for clash in (long, lib / "a.jpg", lib / "a.png", lib / "Clip.jpg", lib / "clip.jpg"):
        shutil.copy(PHOTO, clash)
    (lib / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    assert run_here("detect", lib / "a.jpg", "--out", lib / "old").returncode == 0
    done = run_here("detect", lib, "--out", tmp_path / "out", "--progress", "off")
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    assert f"skipped: {lib / 'gone.jpg'}: cannot be read" in done.stderr
    records = json.loads((tmp_path / "out" / "keypoints.json").read_text())
    assert [r["file"] for r in records] == sorted(
        [latin, str(long), *(str(lib / n) for n in ("a.jpg", "a.png", "Clip.jpg", "clip.jpg"))])
    assert all(len(r["faces"]) == 1 and "error" not in r for r in records), records
    assert os.fsencode(latin) in (tmp_path / "out" / "keypoints.csv").read_bytes()
    drawn = _drawn(tmp_path / "out")
    assert len(drawn) == len(set(d.casefold() for d in drawn)) == 6, drawn
    assert {"lib/a.jpg.jpg", "lib/a.png.jpg", f"lib/{long.name}", "lib/Clip.jpg.jpg",
            "lib/clip~2.jpg"} <= set(drawn), drawn


def test_object_store_names_with_spaces_and_hashes_are_read_as_themselves(tmp_path):
    """file:// inputs whose names hold a space, '#' and '?': each read (the URL keeps its
    percent-escapes) and its face found, through the workers' own code, without Ray."""
    from facekeypoints.batch.store import download, list_inputs
    from facekeypoints.inference import loading
    from facekeypoints.photos import FacePipeline
    from facekeypoints.photos.job import LocalFolder, Manifest
    from facekeypoints.photos.parts import PartWorker, merge

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("my photo.jpg", "a#1.jpg", "why?.jpg"):
        shutil.copy(PHOTO, folder / name)
    entries, problems = list_inputs([f"file://{folder}"])
    assert problems == [] and len(entries) == 3
    manifest = Manifest.plan(entries, [], [f"file://{folder}"], "builtin", "x", {})
    store = LocalFolder(tmp_path / "out")
    pipeline = FacePipeline(loading.load("builtin"))
    worker = PartWorker(pipeline, {"draw": True, "smooth": True}, store, fetch=download)
    for task, indices in enumerate(manifest.tasks):
        worker(task, [{"index": i, **manifest.inputs[i]} for i in indices])
    summary = merge(store, manifest, pipeline.model.columns)
    records = json.loads((tmp_path / "out" / "keypoints.json").read_text())
    assert summary["unreadable"] == 0 and [len(r["faces"]) for r in records] == [1, 1, 1]
    assert sorted(_drawn(tmp_path / "out")) == ["in/a#1.jpg", "in/my photo.jpg", "in/why?.jpg"]


def test_a_video_keeps_to_max_faces_and_min_score_in_every_frame(tmp_path):
    from facekeypoints.inference import loading
    from facekeypoints.photos import FacePipeline
    from facekeypoints.photos.local_job import run_detect

    video = tmp_path / "group.avi"
    _clip(video, GROUP / "2007_007763.jpg", frames=32)  # the tracker looks for newcomers at 30
    model = loading.load("builtin")
    photo = FacePipeline(model).faces_in(reading.read_photo(GROUP / "2007_007763.jpg"))
    assert len(photo) == 7
    for name, options in (("one", {"max_faces": 1}), ("sure", {"min_score": 0.89})):
        run_detect([str(video)], FacePipeline(model, **options), tmp_path / name,
                   draw_pictures=False, log=lambda line: None, progress=False)
    frames = {name: Counter(row.split(",")[1] for row in (tmp_path / name / "keypoints.csv")
                            .read_text().splitlines()[1:]) for name in ("one", "sure")}
    assert frames["one"] == {str(i): 1 for i in range(32)}  # one face in every frame
    # the video's frames are the photo's, recompressed: scores move by a hundredth or two
    assert 1 <= max(frames["sure"].values()) <= sum(f.box.score >= 0.85 for f in photo) < 7
