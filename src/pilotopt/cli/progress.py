"""Progress bars for long work (rich), quiet when stderr is not a terminal unless asked."""

from __future__ import annotations

import contextlib
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)  # progress and notes
out = Console()  # tables and results (stdout, pipeable)


@contextlib.contextmanager
def progress_bar(description: str, total: float | None = None) -> Iterator:
    """Yields update(completed, total=None)."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
                  disable=not console.is_terminal) as prog:
        task = prog.add_task(description, total=total)

        def update(completed: float, new_total: float | None = None) -> None:
            prog.update(task, completed=completed, total=new_total if new_total is not None else total)

        yield update


def line_sayer():
    """say(line) for a command's progress lines, safe for two threads at once: whole lines, written to
    a copy of the original stderr, so a thread silencing a converter's C++ chatter (frameworks.
    quiet_stderr redirects file descriptor 2 for the whole process) cannot swallow another's line."""
    import os
    import sys
    import threading

    lock = threading.Lock()
    try:
        sys.stderr.flush()
        stream = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    except (OSError, ValueError):  # no real fd 2 (captured by a test runner): the usual stderr
        stream = sys.stderr

    def say(line: str) -> None:
        with lock:
            stream.write(f"{line}\n")
            stream.flush()

    return say
