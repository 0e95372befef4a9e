"""`facekeypoints train` and `detect` run as a user runs them, but holding still at a chosen
point of their work, so that a test kills or stops them there and not wherever the machine's
speed put them.

The child says it got there on a pipe of its own: the test blocks on that pipe (an event),
never on a clock; the timeout is only a bound on a hang. A child that dies first closes the pipe,
which ends the wait at once."""

import os
import select
import subprocess
import sys

# The command line, in a process that writes "paused" to the pipe FD and waits for signals
# forever once `pause()` is called (SIGTERM and Ctrl-C reach it there, as they reach a job).
_PAUSE = """
import os, signal, sys
from facekeypoints import cli

fd = int(sys.argv[1])
paused = []

def pause():
    paused.append(True)
    os.write(fd, b"paused\\n")
    while True:
        signal.pause()
"""

_RUN = """
sys.argv = ["facekeypoints", *sys.argv[3:]]
cli.main()
"""

# `train`, with two wrappers: the run's callback at each epoch's start, and each training
# step. At epoch EPOCH (counted from 1) after STEP of its steps it pauses. STEP 0 pauses at the
# epoch's start, where SIGTERM and Ctrl-C reach the run; later steps pause inside a step, where
# only SIGKILL does (a step and its record are never split).
_TRAIN = _PAUSE + """
from facekeypoints.training import loop

epoch, step = map(int, sys.argv[2].split(","))
now = {"epoch": 0, "steps": 0}

begin = loop.RunMonitor.on_epoch_begin
def on_epoch_begin(self, index, logs=None):
    begin(self, index, logs)
    now["epoch"], now["steps"] = index + 1, 0
    if (now["epoch"], step) == (epoch, 0) and not paused:
        pause()
loop.RunMonitor.on_epoch_begin = on_epoch_begin

train_batch = loop._train_batch
def one_step(trainer, data, rows):
    if (now["epoch"], now["steps"]) == (epoch, step) and step and not paused:
        pause()
    now["steps"] += 1
    return train_batch(trainer, data, rows)
loop._train_batch = one_step
""" + _RUN

# `detect` (the local engine): it pauses once it has kept PARTS parts and found FILES inputs
# of the next (FILES 0: between parts, where SIGTERM reaches the job; more: in a part, which
# SIGKILL cuts short).
_DETECT = _PAUSE + """
from facekeypoints.photos import parts

want_parts, want_files = map(int, sys.argv[2].split(","))
kept, found = [], []

task = parts.PartWorker.__call__
def one_task(self, *args, **kwargs):
    result = task(self, *args, **kwargs)
    kept.append(result)
    if (len(kept), want_files) == (want_parts, 0) and not paused:
        pause()
    return result
parts.PartWorker.__call__ = one_task

detect_file = parts.detect_file
def one_file(*args, **kwargs):
    result = detect_file(*args, **kwargs)
    if len(kept) == want_parts and want_files:
        found.append(result)
        if len(found) == want_files and not paused:
            pause()
    return result
parts.detect_file = one_file
""" + _RUN


class Paused:
    """`facekeypoints COMMAND ARGS` that holds still at a point: `wait()` returns once it
    does; then kill or signal `proc`. `train` and `detect` make one."""

    def __init__(self, child: str, where: str, args: list, **popen):
        self.read, write = os.pipe()
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", child, str(write), where,
                                          *map(str, args)], pass_fds=(write,), **popen)
        finally:
            os.close(write)  # the child's copy alone keeps the pipe open

    @classmethod
    def train(cls, args: list, epoch: int, step: int = 0, **popen) -> "Paused":
        """`train ARGS`, held at epoch `epoch` (from 1) after `step` of its steps."""
        return cls(_TRAIN, f"{epoch},{step}", ["train", *args], **popen)

    @classmethod
    def detect(cls, args: list, parts: int, files: int = 0, **popen) -> "Paused":
        """`detect ARGS` (the local engine), held once this process has kept `parts` parts
        and found `files` inputs of the next."""
        return cls(_DETECT, f"{parts},{files}", ["detect", *args], **popen)

    def wait(self, timeout: float = 600) -> None:
        """Until the run holds still (the bound is for a hang, not a time to wait)."""
        ready, _, _ = select.select([self.read], [], [], timeout)
        said = os.read(self.read, 64) if ready else b""
        if said != b"paused\n":
            self.proc.kill()
            _, err = self.proc.communicate(timeout=60)
            raise AssertionError(f"the run never reached its pause ({said!r}, exit "
                                 f"{self.proc.returncode}): {(err or '')[-2000:]}")

    def close(self) -> None:
        """The run stopped (killed where it is still alive) and the pipe closed."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=60)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        os.close(self.read)

    def __enter__(self) -> "Paused":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
