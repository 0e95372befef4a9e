"""A run folder is held by one process at a time: a second one, on this machine (its flock) or
on another sharing the folder (owner.json's beat), is refused in one line; a killed run never
leaves it stuck, and a dead run on another machine is taken over on request."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import facekeypoints as fk
from facekeypoints.errors import UserError
from facekeypoints.stored import runs

HOLD = ("import sys; from facekeypoints.stored.runs import RunFolder; "
        "hold = RunFolder(sys.argv[1]).held(); hold.__enter__(); print('held', flush=True); "
        "sys.stdin.read()")


def _other_machine(folder, seconds_ago: float) -> None:
    """owner.json as a run on another machine writes it (flocks may not reach across)."""
    (folder / runs.OWNER).write_text(json.dumps(
        {"host": socket.gethostname() + "-other", "pid": 4242, "token": "theirs",
         "beat": time.time() - seconds_ago}))


def test_a_live_holder_here_refuses_a_second_and_a_killed_one_leaves_nothing_stuck(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # the event: it holds the folder
        with pytest.raises(UserError, match=f"a run is training there \\(process "
                                            f"{holder.pid} on"):
            runs.RunFolder(folder).held().__enter__()
        with pytest.raises(UserError, match="still running here"):
            runs.RunFolder(folder).take_over()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
    runs.RunFolder.claim(folder)  # the dead hold wrote nothing: a new run may start there
    with runs.RunFolder(folder).held() as lock:  # its owner.json names a dead process
        assert runs.RunFolder(folder).owner()["token"] == lock.token
    assert list(folder.iterdir()) == []  # a hold that wrote nothing leaves no trace
    with runs.RunFolder(tmp_path / "new").held():
        assert (tmp_path / "new" / runs.LOCK).is_file()
    assert not (tmp_path / "new").exists()


def test_another_machines_run_is_refused_while_it_beats_and_taken_over_on_request(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    _other_machine(folder, seconds_ago=1)
    with pytest.raises(UserError, match="--resume --take-over"):
        runs.RunFolder(folder).held().__enter__()
    runs.RunFolder(folder).take_over()
    with runs.RunFolder(folder).held():
        pass
    _other_machine(folder, seconds_ago=runs.STALE_SECONDS + 1)  # silent: dead
    with runs.RunFolder(folder).held():
        pass


def test_a_run_whose_folder_was_taken_over_stops_before_its_next_checkpoint(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(runs, "BEAT_SECONDS", 0.02)
    run = runs.RunFolder(tmp_path / "run")
    with run.held() as lock:
        run.save_checkpoint([], [], {"epoch": 1}, None)
        _other_machine(run.path, seconds_ago=0)  # a take-over from another machine
        lock._beat.join(timeout=120)  # the beat that finds it ends there: the event waited for
        assert lock.lost is not None
        with pytest.raises(UserError, match="taken over by process 4242"):
            run.save_checkpoint([], [], {"epoch": 2}, None)
    assert run.state()["epoch"] == 1 and run.owner()["token"] == "theirs"


def test_take_over_goes_with_resume(tmp_path, synthetic_files):
    with pytest.raises(UserError, match="--take-over goes with --resume"):
        fk.train("model1", synthetic_files["training.csv"], tmp_path / "run", take_over=True,
                 log=None)


def test_a_run_another_machine_still_holds_resumes_only_with_take_over(tmp_path,
                                                                       synthetic_files):
    """A run killed on another machine sharing the folder says "running" and beat a moment
    ago: --resume is refused with the way out, --resume --take-over continues it."""
    run = fk.train("model1", synthetic_files["training.csv"], tmp_path / "run", epochs=1,
                   progress=False, log=None)
    folder = runs.RunFolder(run.path)
    summary = folder.summary() | {"status": "running", "host": "elsewhere", "pid": 4242}
    folder.summary_file.write_text(json.dumps(summary))
    _other_machine(run.path, seconds_ago=1)
    assert run.status == "running"
    with pytest.raises(UserError, match="still running .*--resume --take-over"):
        fk.train(None, out=run.path, resume=True, epochs=2, progress=False, log=None)
    again = fk.train(None, out=run.path, resume=True, epochs=2, take_over=True, progress=False,
                     log=None)
    assert again.status == "finished" and len(again.history) == 2
    assert folder.owner() is None  # released when the run stopped
