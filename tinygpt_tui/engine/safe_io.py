"""The one way tinygpt opens a file.

A model folder may come from a stranger (a tarball, a shared models directory), so
the name of a file says nothing about what is behind it:
- writes never follow a symbolic link: whole files are written to a new temporary
  file and renamed over the name (a rename replaces a link, it does not follow it),
  and the lock and metrics.jsonl, appended in place, are opened with O_NOFOLLOW;
- reads accept only regular files: opened with O_NONBLOCK (a FIFO cannot block the
  open), checked with fstat before a byte is read (a FIFO, /dev/zero or a folder is
  refused by kind); a link to a regular file is read, as a user may make one on purpose;
- reads are bounded by a limit per kind of file, checked on the size and again on
  what is actually read, and text is checked on its first bytes (binary, UTF-16)
  and chunk by chunk (NUL bytes) before the rest is read.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from tinygpt_tui.errors import CheckpointError

KiB, MiB = 1024, 1024 * 1024
CHUNK = 4 * MiB
BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path, what: str, error=CheckpointError, write: bool = False) -> int:
    """A file descriptor on a regular file (created for a write); anything else is refused by kind.

    A write never follows a link (O_NOFOLLOW); a read does (a user's link to their own file)."""
    flags = os.O_NONBLOCK | os.O_CLOEXEC | (os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW if write else os.O_RDONLY)
    try:
        fd = os.open(path, flags, 0o666)
    except FileNotFoundError:
        raise error(f"{what} is missing: {path}") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise error(f"{what} is a symbolic link, which tinygpt does not write through: {path}") from None
        if e.errno == errno.EISDIR:
            raise error(f"{what} is a folder, not a file: {path}") from None
        raise error(f"cannot open {what}: {e.strerror or e}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"{what} is {_kind(mode)}, not a regular file: {path}")
    os.set_blocking(fd, True)
    return fd


def read_bytes(path, what: str, limit: int, error=CheckpointError, text: bool = False) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    text: refuse binary content (NUL bytes) and UTF-16/32 on the first bytes, then on
    every chunk as it arrives, so a huge file of NULs costs one chunk of memory."""
    fd = open_regular(path, what, error)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise error(f"{what} is {size:,} bytes, more than the {limit:,} tinygpt reads: {path}")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(CHUNK, limit + 1 - total))
            if not chunk:
                break
            if text:
                if not chunks:
                    check_text_start(chunk, what, path, error)
                if b"\x00" in chunk:
                    raise error(f"{what} looks binary (it contains NUL bytes), not text: {path}")
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew since fstat
                raise error(f"{what} is more than the {limit:,} bytes tinygpt reads: {path}")
        return b"".join(chunks)
    except OSError as e:
        raise error(f"cannot read {what}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def check_text_start(head: bytes, what: str, path, error=CheckpointError) -> None:
    """Cheap checks on the first bytes of a file meant to be UTF-8 text."""
    for bom, name in BOMS.items():
        if head.startswith(bom):
            raise error(f"{what} is {name} text, tinygpt reads UTF-8: convert it first, e.g. iconv -f {name} -t UTF-8: {path}")
    if b"\x00" in head[:64 * KiB]:
        raise error(f"{what} looks binary (it contains NUL bytes), not text: {path}")


def read_text(path, what: str, limit: int, error=CheckpointError) -> str:
    """A UTF-8 text file of at most ``limit`` bytes (see read_bytes)."""
    return decode_utf8(read_bytes(path, what, limit, error, text=True), what, path, error)


def decode_utf8(raw: bytes, what: str, path, error=CheckpointError) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} is not UTF-8 text (bad byte 0x{raw[e.start]:02x} at offset {e.start}): {path}; "
                    "convert it first, e.g. iconv -f latin1 -t utf-8") from None


def read_json(path, what: str, limit: int, error=CheckpointError):
    import json

    text = read_text(path, what, limit, error)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} is not valid JSON ({e.msg} at line {e.lineno}): {path}") from None
    except RecursionError:
        raise error(f"{what} nests too deeply to be a tinygpt file: {path}") from None


def append(path, data: str, what: str) -> None:
    """Append to a regular file, never through a link (metrics.jsonl)."""
    fd = open_regular(path, what, write=True)
    try:
        os.lseek(fd, 0, os.SEEK_END)
        os.write(fd, data.encode("utf-8"))
    finally:
        os.close(fd)


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
    """Write data to a new temporary file beside path (O_EXCL: never an existing file or link) and fsync it."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise CheckpointError(f"cannot write to {path.parent}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            mask = os.umask(0)
            os.umask(mask)
            os.fchmod(f.fileno(), 0o666 & ~mask)  # as an ordinary new file (mkstemp makes it 0600)
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
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
