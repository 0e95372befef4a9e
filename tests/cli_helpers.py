"""Running the command line as a user does, and checking its one-line errors."""

import os
import subprocess
import sys

CLI = [sys.executable, "-m", "facekeypoints.cli"]


def run(*args, cwd=None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The command line, with `env` set beside this process's environment."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=None if env is None else {**os.environ, **env})


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2, no traceback, one line on stderr holding every fragment."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
