"""The one way tinygpt opens a file: whole files written atomically, reads bounded."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tinygpt_tui.errors import CheckpointError


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    tmp = stage(path, data)
    try:
        os.replace(tmp, path)
    except OSError as e:
        unlink_quietly(tmp)
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}") from None


def stage(path: Path, data: bytes | str) -> str:
    """Write data to a temporary file beside path and fsync it; return the temporary name."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise CheckpointError(f"cannot write to {path.parent}: {e.strerror or e}") from None
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        unlink_quietly(tmp)
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}") from None
    return tmp


def unlink_quietly(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


MAX_JSON_BYTES = 64 * 1024 * 1024  # a vocabulary of two million characters fits


def read_text(path: Path, what: str) -> str:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise CheckpointError(f"{what} is too large: {path}")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(f"{what} is missing in {path.parent}") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{what} is not UTF-8 text") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {what}: {e.strerror or e}") from None


def read_json(path: Path, what: str):
    if not path.exists():
        raise CheckpointError(f"{what} is missing: {path}")
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{what} is not valid JSON ({e.msg} at line {e.lineno}): {path}") from None
    except RecursionError:
        raise CheckpointError(f"{what} nests too deeply to be a tinygpt file: {path}") from None
