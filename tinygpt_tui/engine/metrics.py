"""metrics.jsonl: one JSON record a line, appended while a run trains, read by anyone following it
(never through a link, a bounded chunk at a time, only records that pass files.valid_record)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tinygpt_tui.engine.files import MiB, append, atomic_write, open_regular, valid_record
from tinygpt_tui.engine.folder import METRICS
from tinygpt_tui.errors import CheckpointError

MAX_LINE = 1 * MiB  # a record is a few hundred bytes (a sample of text at most kilobytes)
MAX_READ = 64 * MiB  # per call: a follower catches up over several calls
FLUSH_S = 1.0  # a record waits at most this long for the file (a follower lags by no more)


def append_metrics(folder, records: list[dict]) -> None:
    if records:
        append(Path(folder) / METRICS, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), METRICS)


class MetricsLog:
    """A run's records on their way to metrics.jsonl: step records within FLUSH_S (one append a second,
    not one a step), every other record at once."""

    def __init__(self, folder, every_s: float | None = None, clock=time.monotonic):
        self.folder, self.every_s, self.clock = folder, FLUSH_S if every_s is None else every_s, clock
        self.pending: list[dict] = []
        self.last = clock()

    def add(self, record: dict, now: bool = True) -> None:
        self.pending.append(record)
        self.flush() if now else self.tick()

    def tick(self) -> None:
        """Write what is pending if it has waited long enough (called once a step)."""
        if self.pending and self.clock() - self.last >= self.every_s:
            self.flush()

    def flush(self) -> None:
        try:
            append_metrics(self.folder, self.pending)
        except OSError:
            pass  # a log: a full disk must not kill the run (the save will say so); a link in its place does
        self.pending.clear()
        self.last = self.clock()


def _parse(lines: list[bytes]) -> tuple[list[dict], bool]:
    """The usable records among the lines, and whether any line was not one."""
    records, bad = [], False
    for line in lines:
        try:
            r = json.loads(line) if len(line) <= MAX_LINE else None
        except (ValueError, RecursionError):
            r = None
        if valid_record(r):
            records.append(r)
        else:
            bad = True
    return records, bad


def _read(folder, start: int, limit: int) -> bytes | None:
    """At most limit bytes from start; None if there is no regular file to read."""
    try:
        fd = open_regular(Path(folder) / METRICS, METRICS)
    except CheckpointError:
        return None  # missing (not yet written), or not a file to read
    try:
        return os.pread(fd, max(0, min(limit, os.fstat(fd).st_size - start)), start)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_lines(folder, start: int = 0, limit: int = MAX_READ) -> tuple[list[bytes], int]:
    """The complete lines from byte offset ``start`` (unparsed; at most ``limit`` bytes), and the offset to go on from. A
    line still being written is left for the next call; one past MAX_LINE without an end is skipped, not read again and again."""
    chunk = _read(folder, start, limit)
    if not chunk:
        return [], start
    end = chunk.rfind(b"\n") + 1
    if end == 0 and len(chunk) > MAX_LINE:
        return [], start + len(chunk)  # the rest of that line is refused when it ends
    return chunk[:end].splitlines(), start + end


def parse_record(line: bytes) -> dict | None:
    """One line as a usable record, or None."""
    records, _ = _parse([line])
    return records[0] if records else None


def read_metrics(folder, start: int = 0) -> tuple[list[dict], int]:
    """Complete records from byte offset ``start``, and the offset to go on from (see read_lines)."""
    lines, offset = read_lines(folder, start)
    return _parse(lines)[0], offset


def truncate_metrics(folder, after_step: int) -> None:
    """Drop records past a checkpoint's step (a resumed run rewrites that stretch)."""
    raw = _read(folder, 0, MAX_READ + 1)
    if raw is None:
        return
    if len(raw) > MAX_READ:
        raise CheckpointError(f"{METRICS} is more than {MAX_READ:,} bytes; move it aside to resume")
    end = raw.rfind(b"\n") + 1
    records, bad = _parse(raw[:end].splitlines())
    kept = [r for r in records if r.get("step", 0) <= after_step]
    # rewrite also when a kill left half a line (or a garbled one): appending to it would glue
    # the next record onto the fragment and lose it
    if len(kept) != len(records) or bad or end != len(raw):
        atomic_write(Path(folder) / METRICS, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
