"""How an import says how far it is: bars on a terminal, one line per stage anywhere else.

An import runs in stages (read, check, write, …); each stage counts rows. :class:`Progress` is
the contract: ``stage(name, total)`` is a context manager yielding a counter with ``update(n)``.
A terminal gets tqdm bars that redraw in place; a log (``make run``, cron, a pipe) gets one line
per stage when it ends, never hundreds of carriage-return fragments; the import worker also
records the current stage on its job (:mod:`importers.jobs`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TextIO


class Counter:
    """What a stage yields: ``update(n)`` adds ``n`` rows done."""

    def __init__(self, total: int | None = None) -> None:
        self.total = total
        self.done = 0

    def update(self, n: int = 1) -> None:
        self.done += n


class Progress:
    """Base class and the silent reporter: stages are counted, nothing is shown."""

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Counter]:
        """One stage of ``total`` rows (``None``: not counted in rows)."""
        yield Counter(total)


class Bars(Progress):
    """tqdm bars on a terminal, cleared when their stage ends."""

    def __init__(self, stream: TextIO, *, label: str = "") -> None:
        self.stream = stream
        self.label = label

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Counter]:
        from tqdm import tqdm

        description = f"{self.label}: {name}" if self.label else name
        with tqdm(total=total, desc=description, unit="row", file=self.stream, leave=False) as bar:
            counter = _Forwarding(total, bar.update)
            yield counter


class Lines(Progress):
    """One line per stage, written when the stage ends (or stops on an error)::

    addresses.csv: read: 1,000,000 rows in 3.1 s
    """

    def __init__(self, stream: TextIO, *, label: str = "") -> None:
        self.stream = stream
        self.label = label

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Counter]:
        counter = Counter(total)
        start = time.monotonic()
        outcome = ""
        try:
            yield counter
        except BaseException:
            outcome = " (stopped)"
            raise
        finally:
            rows = counter.done if counter.done or total is None else total
            counted = f"{rows:,} rows in " if (counter.done or total) else ""
            prefix = f"{self.label}: " if self.label else ""
            self.stream.write(f"{prefix}{name}: {counted}{time.monotonic() - start:.1f} s{outcome}\n")
            self.stream.flush()


class Several(Progress):
    """Reports each stage to several reporters at once (the worker's log and its job row)."""

    def __init__(self, *reporters: Progress) -> None:
        self.reporters = reporters

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Counter]:
        with ExitStack() as stack:
            counters = [stack.enter_context(reporter.stage(name, total)) for reporter in self.reporters]
            yield _Forwarding(total, *(counter.update for counter in counters))


class _Forwarding(Counter):
    def __init__(self, total: int | None, *targets) -> None:
        super().__init__(total)
        self.targets = targets

    def update(self, n: int = 1) -> None:
        super().update(n)
        for target in self.targets:
            target(n)


def progress_for(stream: TextIO | None = None, *, verbosity: int = 1, label: str = "") -> Progress:
    """The reporter for a command's output: nothing at verbosity 0, bars when ``stream`` (default
    stderr) is a terminal, one line per stage otherwise."""
    stream = stream if stream is not None else sys.stderr
    if verbosity <= 0:
        return Progress()
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return Bars(stream, label=label)
    return Lines(stream, label=label)
