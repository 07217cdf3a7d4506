"""metrics.jsonl: one JSON record per line, appended while a run trains and read by anyone following it."""

from __future__ import annotations

import json
from pathlib import Path

from tinygpt_tui.engine.safe_io import atomic_write

METRICS = "metrics.jsonl"


def append_metrics(folder, records: list[dict]) -> None:
    if not records:
        return
    with open(Path(folder) / METRICS, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        f.flush()


def _parse(lines: list[bytes]) -> tuple[list[dict], bool]:
    """The records among the lines, and whether any line was not one."""
    records, bad = [], False
    for line in lines:
        try:
            r = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            r = None
        if isinstance(r, dict):
            records.append(r)
        else:
            bad = True
    return records, bad


def read_metrics(folder, start: int = 0) -> tuple[list[dict], int]:
    """Complete records from byte offset ``start``; returns them and the offset to continue from.

    A line still being written (no newline yet) is left for the next call, so
    a reader can follow a growing file written by another process.
    """
    try:
        with open(Path(folder) / METRICS, "rb") as f:
            f.seek(start)
            chunk = f.read()
    except FileNotFoundError:
        return [], start
    end = chunk.rfind(b"\n") + 1
    return _parse(chunk[:end].splitlines())[0], start + end


def truncate_metrics(folder, after_step: int) -> None:
    """Drop records past a checkpoint's step (a resumed run rewrites that stretch)."""
    try:
        with open(Path(folder) / METRICS, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return
    end = raw.rfind(b"\n") + 1
    records, bad = _parse(raw[:end].splitlines())
    kept = [r for r in records if not (isinstance(r.get("step"), int) and r["step"] > after_step)]
    # rewrite also when a kill left half a line (or a garbled one): appending to it would glue
    # the next record onto the fragment and lose it
    if len(kept) != len(records) or bad or end != len(raw):
        atomic_write(Path(folder) / METRICS, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
