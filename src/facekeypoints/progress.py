"""Progress a person can follow: a widget in Jupyter, a bar in a terminal, plain lines in a log.

Training the tutorial's recipes takes an hour or more, so every long loop (epochs, photos and
frames, submission rows) reports how far it is, how long it has run, and when it should end.
`FACEKEYPOINTS_PROGRESS=widget|bar|lines|off` overrides the choice.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

MODES = ("auto", "widget", "bar", "lines", "off")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where stderr is no terminal but a person is watching)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython() if hasattr(shell, "get_ipython") else None
    return type(ip).__name__ == "ZMQInteractiveShell"


def choose(mode: str | bool | None = "auto") -> str:
    """The display to use: the user's choice, else what the output is connected to."""
    if mode is False:
        return "off"
    if mode in (None, True, "auto"):
        mode = os.environ.get("FACEKEYPOINTS_PROGRESS", "auto")
    if mode not in MODES:
        from .errors import UserError

        raise UserError(f"progress {mode!r}: expected one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401 - tqdm's widget needs it
        except ImportError:
            return "lines"
        return "widget"
    return "bar" if sys.stderr.isatty() else "lines"


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """`update(n, **figures)` after each step; `close()` at the end (or use `with`).

    Plain lines go through `log` (default: stderr), at most one every `every` seconds, plus the
    first and last."""

    def __init__(self, total: int | None, desc: str, unit: str = "it", initial: int = 0,
                 mode: str | bool | None = "auto", log: Callable[[str], None] | None = None,
                 every: float = 10.0):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.initial, self.every = initial, every
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.mode = choose(mode)
        self.start = time.monotonic()
        self.last_line = -float("inf")
        self.figures: dict[str, str] = {}
        self.bar = None
        if self.mode in ("widget", "bar"):
            if self.mode == "widget":
                from tqdm.notebook import tqdm
            else:
                from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, unit=unit, initial=initial,
                            dynamic_ncols=True, leave=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1, **figures: object) -> None:
        self.n += n
        self.figures.update({k: str(v) for k, v in figures.items()})
        if self.bar is not None:
            self.bar.set_postfix(self.figures, refresh=False)
            self.bar.update(n)
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self.last_line >= self.every or self.n == self.initial + n \
                    or self.n == self.total:
                self.last_line = now
                self.log(self.line())

    def note(self, message: str) -> None:
        """A line of its own (a file's result, a warning), printed above a bar, never lost."""
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        elif self.mode != "off":
            self.log(message)

    def warn(self, message: str) -> None:
        """A note that is printed even with the progress off: what went wrong is never quiet."""
        if self.mode == "off":
            self.log(message)
        else:
            self.note(message)

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        done = self.n - self.initial
        parts = [f"{self.desc} {self.n}/{self.total if self.total else '?'} {self.unit}s",
                 f"elapsed {clock(elapsed)}"]
        if self.total and done > 0 and self.n < self.total:
            parts.append(f"eta {clock(elapsed / done * (self.total - self.n))}")
        parts += [f"{k} {v}" for k, v in self.figures.items()]
        return "  ".join(parts)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
