"""The decoding step's first compile (fast/decode.py), in a process of its own, and the note of what is
compiled already.

The first time on a machine numba compiles the step for 20-40 s. In a thread of the process that decodes
meanwhile, the compiler and the numpy step shared one GIL: the text came at a third of its speed and the
app's screen stalled. ``compile_beside`` runs ``python -m tinygpt_tui.fast.warm JOB`` instead, which has
its own core and GIL and goes on after the process that started it ends (a Ctrl+C, the app closed), so
that the next run finds the step in numba's cache. ``known``/``remember`` keep, in
$XDG_CACHE_HOME/tinygpt/decoder.json, which argument types were compiled here: those are loaded from the
cache in the process itself, a fraction of a second, with no process started. Where the note cannot be written
(a read-only cache folder, no home), the step is compiled in place, as where numba cannot cache.

JOB is JSON: {"config": the model's GPTConfig fields, "precision": "int8" or "fp32"}. The model is built
with random weights: the compiled step depends on its arrays' types, not their values.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tinygpt_tui.engine.files import atomic_write, cache_dir
from tinygpt_tui.errors import TinyGPTError

CHILD_ENV = "TINYGPT_COMPILING"  # set in the process that compiles: it compiles in place
MAX_KNOWN = 64  # the types remembered (a few per model shape and precision)
CHILD_TIMEOUT_S = 600  # a compiler that hangs is stopped, and the step compiled in place


def compile_beside(types, ready, cfg, precision: str) -> None:
    """(a thread) Compile in a child process, then load what it cached (compiled here where it could not)."""
    import dataclasses

    from tinygpt_tui.fast import decode

    job = json.dumps({"config": dataclasses.asdict(cfg), "precision": precision})
    try:  # (its own session: a Ctrl+C here does not stop it)
        subprocess.run([sys.executable, "-m", "tinygpt_tui.fast.warm", job], env={**os.environ, CHILD_ENV: "1"}, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, check=False,
                       timeout=CHILD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        pass
    decode.compile_here(types, ready)


def _key(types) -> str:
    """The types and what numba's cache of them depends on: numba, Python, the compiled files and where they are."""
    import numba

    from tinygpt_tui import sampler
    from tinygpt_tui.fast import decode

    parts = [numba.__version__, sys.version, os.environ.get("NUMBA_CACHE_DIR", ""), str(types)]
    parts += [f"{os.path.abspath(f)}:{os.stat(f).st_mtime_ns}" for f in (decode.__file__, sampler.__file__)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _path() -> Path | None:
    """$XDG_CACHE_HOME/tinygpt/decoder.json (engine/files.py: a relative $XDG_CACHE_HOME is ignored); None without a home."""
    folder = cache_dir()
    return folder / "decoder.json" if folder is not None else None


def _keys() -> list[str]:
    path = _path()
    if path is None:
        return []
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read(1 << 16))
    except (OSError, ValueError):
        return []
    keys = doc.get("compiled") if isinstance(doc, dict) else None
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def known(types) -> bool:
    """Whether these types were compiled here before, so numba's cache holds them (a cache cleared since is
    compiled again, in the process itself, as where numba cannot cache)."""
    return _key(types) in _keys()


def can_remember() -> bool:
    """Whether the note can be written (its folder made, writable): where it can't, known() is never true, and a
    process would be started at every run, its torch import seconds of CPU each time for what numba's cache holds."""
    path = _path()
    if path is None:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # (a file where a folder should be, a read-only cache)
        return False
    return os.access(path.parent, os.W_OK | os.X_OK) and not path.is_dir()


def remember(types) -> None:
    """Note that these types are in numba's cache; where the note cannot be written, nothing is noted."""
    key = _key(types)
    path = _path()
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"compiled": ([k for k in _keys() if k != key] + [key])[-MAX_KNOWN:]}))
    except (OSError, TinyGPTError):
        pass


def main(argv: list[str]) -> int:
    import torch

    from tinygpt_tui.config import GPTConfig
    from tinygpt_tui.fast import decode
    from tinygpt_tui.model import GPT

    with contextlib.suppress(OSError, AttributeError):  # (behind what the user is doing; no nice() on Windows)
        os.nice(10)
    torch.set_num_threads(1)
    job = json.loads(argv[0])
    os.environ[CHILD_ENV] = "1"  # (compiled here, not handed to another process)
    decoder = decode.JitModel.from_torch(GPT(GPTConfig(**job["config"]))).decoder(job["precision"])
    decoder.ready.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
