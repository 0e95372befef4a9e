"""Running the command line as a user does, and checking its one-line errors."""

import contextlib
import io
import os
import subprocess
import sys
import traceback

CLI = [sys.executable, "-m", "facekeypoints.cli"]


def run(*args, cwd=None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The command line, with `env` set beside this process's environment."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=None if env is None else {**os.environ, **env})


def run_here(*args, cwd=None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The command line in this process, as `run` gives it: exit code, stdout and stderr.

    For tests of what a command does, not of the process around it (signals, kills, a fresh
    interpreter's imports): a subprocess imports TensorFlow again, seconds a call. An uncaught
    exception is exit code 1 with its traceback on stderr, as Python gives it. `env` holds for
    the call, but what the package reads once a process (`FACEKEYPOINTS_RUNTIME` once a model is
    open) needs `run`."""
    from facekeypoints import cli

    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_cwd, saved_env = sys.argv, os.getcwd(), dict(os.environ)
    sys.argv = ["facekeypoints", *map(str, args)]
    code = 0
    try:
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["facekeypoints", *map(str, args)], code, out.getvalue(),
                                       err.getvalue())


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2, no traceback, one line on stderr holding every fragment."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
