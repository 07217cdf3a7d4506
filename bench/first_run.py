"""The first-ever generation on a machine: `tinygpt generate` with numba's cache (and tinygpt's note of what
it holds) emptied, so the decoding step is compiled while numpy decodes. Reports the first character, the
end of the text and numpy's pace meanwhile; with --baseline, another checkout's the same way, taking turns.

    python -m bench.first_run --chars 3000 --rounds 2 --baseline ../old-checkout

A benchmark, not a test: it prints figures and asserts nothing. Each run's compiler, if still at work when
the text ends (it goes on after the command, for the next run), is stopped before the next run starts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stop_compilers(scratch: str) -> None:
    """Stop the processes compiling into this run's scratch cache (found by it in their environment)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if scratch.encode() in f.read():
                    os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def first_run(tree: Path, model: str, models_dir: Path, chars: int) -> dict:
    scratch = tempfile.mkdtemp(prefix="tinygpt-first-run-")
    env = {**os.environ, "NUMBA_CACHE_DIR": f"{scratch}/numba", "XDG_CACHE_HOME": f"{scratch}/cache", "PYTHONPATH": str(tree)}
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "tinygpt_tui.cli.main", "generate", model, "-p", "ROMEO:", "--max-new", str(chars),
                          "--seed", "1", "--models-dir", str(models_dir)], cwd=tree, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    first, n = None, 0
    while b := p.stdout.read(1):
        first = first if first is not None else time.perf_counter() - t0
        n += 1
    done = time.perf_counter() - t0
    p.wait()
    stop_compilers(scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"first_s": round(first or 0.0, 2), "text_s": round(done, 2), "exit_s": round(time.perf_counter() - t0, 2),
            "bytes_per_s": round(n / max(done - (first or 0.0), 1e-9))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="shakespeare")
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--chars", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--baseline", type=Path, help="another checkout, run the same way, taking turns")
    a = ap.parse_args()
    trees = [("baseline", a.baseline.resolve())] if a.baseline else []
    trees.append(("this checkout", ROOT))
    for _ in range(a.rounds):
        for name, tree in trees:
            print(name, json.dumps(first_run(tree, a.model, a.models_dir.resolve(), a.chars)), flush=True)


if __name__ == "__main__":
    main()
