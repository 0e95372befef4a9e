"""Running the command line as a user does, and checking its one-line errors."""

import contextlib
import os
import subprocess
import sys
import tempfile
import traceback
import warnings

CLI = [sys.executable, "-m", "facekeypoints.cli"]


def run(*args, cwd=None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The command line, with `env` set beside this process's environment."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=None if env is None else {**os.environ, **env})


def run_here(*args, cwd=None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The command line in this process, as `run` gives it: exit code, stdout and stderr.

    For tests of what a command does, not of the process around it (signals, kills, a fresh
    interpreter's imports): a subprocess imports TensorFlow again, seconds a call. What reaches
    file descriptors 1 and 2 is captured, so C and C++ libraries' notices (OpenCV, LiteRT) count
    as a subprocess's would, and so are Python's warnings, shown as Python shows them. An
    uncaught exception is exit code 1 with its traceback on stderr. os.environ, the working
    folder and Keras' precision policy are put back; `env` holds for the call, but what the
    package reads once a process (`FACEKEYPOINTS_RUNTIME` once a model is open, a Ray
    connection) needs `run`."""
    from facekeypoints import cli

    saved_argv, saved_cwd, saved_env = sys.argv, os.getcwd(), dict(os.environ)
    policy = _keras_policy()  # Keras' own default where the call is the first to import it
    sys.argv = ["facekeypoints", *map(str, args)]
    code = 0
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        sys.stdout.flush()
        sys.stderr.flush()
        saved_fds = os.dup(1), os.dup(2)
        os.dup2(out_file.fileno(), 1)
        os.dup2(err_file.fileno(), 2)
        out = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        err = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        try:
            os.environ.update(env or {})
            if cwd is not None:
                os.chdir(cwd)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                    warnings.catch_warnings():
                _python_warning_filters()
                warnings.showwarning = _show_warning
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
            out.flush()
            err.flush()
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            sys.argv = saved_argv
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            if "keras" in sys.modules:
                import keras

                keras.mixed_precision.set_global_policy(policy)
        texts = []
        for file in (out_file, err_file):
            file.seek(0)
            texts.append(file.read().decode("utf-8", errors="replace"))
    return subprocess.CompletedProcess(["facekeypoints", *map(str, args)], code, *texts)


def _keras_policy() -> str:
    """Keras' global precision policy (`--set precision=mixed` sets it for the rest of a
    process)."""
    if "keras" not in sys.modules:
        return "float32"
    import keras

    return keras.mixed_precision.global_policy().name


def _python_warning_filters() -> None:
    """Python's own defaults, not pytest's: what a user's fresh interpreter would show."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                     ResourceWarning):
        warnings.filterwarnings("ignore", category=category)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2, no traceback, one line on stderr holding every fragment."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
