"""Sampling in a child process, so a program with a busy main thread (the app) does not slow it down.

A sampler thread in the app shares the GIL with the thread that repaints the
screen: between two compiled steps (and, on the PyTorch path, between every
one of its ~60 operations per character) it must take the GIL back, and each
time it may wait for the repaint. In a process of its own
the sampler runs at the speed of ``tinygpt generate``.

    sp = SamplerProcess()          # starts the child (a fresh interpreter: subprocess, never a plain fork)
    sp.load("models/shakespeare")  # the child loads the model (on a CPU: the compiled decoder, no torch)
    sp.wait_ready(30)
    g = sp.generate(ids, SamplingSettings(max_new_tokens=500))
    for text, t_sampled in g.chunks():   # chunks of characters, about 30 a second
        ...
    g.stop()                       # ends it between two characters (the child is told at once)
    sp.close()

The child runs the same ``core.sampler.Generation`` as the command line and
sends ``(text, time the first of its characters was sampled)`` chunks through
a socket pair, at most every ``flush_interval`` seconds (1/40; the first character at
once). Times are ``time.perf_counter()``, the system's monotonic clock, so they
compare across the two processes.

The child dies with its parent however the parent ends (quit, Ctrl+C, kill -9):
it reads its commands in a thread and exits the moment the socket closes. It
ignores SIGINT, runs in its own session, and its stdout and stderr never reach
the terminal (stderr goes to a temporary file whose tail explains a crash).
When the child cannot start or dies, ``RemoteError`` (with ``died = True``)
says why, and the caller can fall back to sampling in-process.

Nothing here imports torch in the parent; the child imports it only where the compiled
decoder cannot run (a GPU asked for, or numba missing).
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from tinygpt_tui.errors import TinyGPTError

FLUSH_INTERVAL = 1 / 40  # seconds between two chunks sent by the child: the oldest character waits at most 25 ms


class RemoteError(TinyGPTError):
    """The sampler process failed: ``died`` when it is gone (start-up failed, crashed, was killed)."""

    def __init__(self, message: str, died: bool = False):
        super().__init__(message)
        self.died = died


# ---------------------------------------------------------------------------------------------- parent side
class RemoteGeneration:
    """One generation running in the child. Iterate ``chunks()`` (or the object, for characters)."""

    def __init__(self, owner: "SamplerProcess", gen_id: int):
        self._owner = owner
        self.gen_id = gen_id
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self.stop_event = threading.Event()
        self.generated = 0
        self.finished = False
        self.error = ""
        self.died = False

    def stop(self) -> None:
        """Ask the child to stop after the character it is sampling (no-op once finished)."""
        if self.stop_event.is_set():
            return
        self.stop_event.set()
        if not self.finished:
            self._owner._send(("stop", self.gen_id))

    def chunks(self, timeout: float | None = None):
        """Yield ``(text, t_first_sampled)`` until the generation ends.

        Raises ``RemoteError`` if the child reports an error or dies (``died``).
        ``timeout``: seconds to wait for the next message before giving up (RemoteError).
        """
        while True:
            try:
                msg = self._q.get(timeout=timeout)
            except queue.Empty:
                raise RemoteError(f"no word from the sampler process in {timeout:g} s") from None
            kind = msg[0]
            if kind == "chunk":
                text = msg[2]
                self.generated += len(text)
                yield text, msg[3]
                continue
            self.finished = True
            if kind == "done":
                self.error = msg[3] or ""
                if self.error:
                    raise RemoteError(self.error)
                return
            # "dead"
            self.died = True
            self.error = msg[1]
            raise RemoteError(msg[1], died=True)

    def __iter__(self):
        for text, _ in self.chunks():
            yield from text


class SamplerProcess:
    """A long-lived child process that loads one model at a time and samples from it on request.

    Thread-safe: ``load``, ``generate`` and ``stop`` may be called from any thread.
    """

    def __init__(self, flush_interval: float = FLUSH_INTERVAL, python: str | None = None):
        self.flush_interval = flush_interval
        self.python = python or sys.executable
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None
        self._conn = None
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._gens: dict[int, RemoteGeneration] = {}
        self._next_id = 0
        self._load_seq = 0
        self._stderr = None
        self.started = threading.Event()  # the child is up (torch imported)
        self.ready = threading.Event()  # the model asked for last is loaded
        self.model_path: str | None = None  # what the last load asked for
        self.device_name = ""
        self.load_error = ""
        self.dead = ""  # why the child is gone ("" while it runs)
        self._closing = False

    # ------------------------------------------------------------ life cycle
    def start(self) -> "SamplerProcess":
        """Start the child (returns at once; it imports torch in the background)."""
        if self._proc is not None:
            return self
        if os.name == "nt":
            raise RemoteError("a sampler process needs a POSIX system here", died=True)
        ours, theirs = socket.socketpair()
        try:
            self._stderr = tempfile.TemporaryFile()
            env = dict(os.environ)
            root = str(Path(__file__).resolve().parents[2])  # so the child finds tinygpt_tui however we were started
            env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            self._proc = subprocess.Popen(
                [self.python, "-m", "tinygpt_tui.engine.remote", str(theirs.fileno()), repr(self.flush_interval)],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                start_new_session=True,  # Ctrl+C in the terminal is the parent's business
                env=env,
            )
        except OSError as e:
            ours.close()
            self.dead = f"cannot start the sampler process ({e})"
            raise RemoteError(self.dead, died=True) from None
        finally:
            theirs.close()
        from multiprocessing.connection import Connection

        self.pid = self._proc.pid
        self._conn = Connection(ours.detach())
        threading.Thread(target=self._read, name="tinygpt-sampler-reader", daemon=True).start()
        return self

    @property
    def alive(self) -> bool:
        return self._proc is not None and not self.dead

    def close(self, timeout: float = 1.0) -> None:
        """Stop the child (it exits as soon as its socket closes; killed if it lingers)."""
        self._closing = True
        proc, conn = self._proc, self._conn
        if conn is not None:
            try:
                self._send(("quit",))
            except RemoteError:
                pass
            try:
                conn.close()
            except OSError:
                pass
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _send(self, msg) -> None:
        conn = self._conn
        if conn is None or self.dead:
            raise RemoteError(self.dead or "the sampler process is not running", died=True)
        try:
            with self._send_lock:
                conn.send(msg)
        except (OSError, ValueError) as e:  # the child is gone; the reader thread says why
            raise RemoteError(self.dead or f"the sampler process is gone ({e})", died=True) from None

    # ------------------------------------------------------------ commands
    def load(self, path, device: str = "auto") -> None:
        """Load a model folder in the child (in the background; see ``ready`` / ``wait_ready``)."""
        with self._lock:
            self._load_seq += 1
            seq = self._load_seq
            self.ready.clear()
            self.load_error = ""
            self.model_path = str(path)
        self._send(("load", seq, str(path), device))

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the last model asked for is loaded (False on timeout, failure or death)."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.ready.is_set():
            if self.dead or self.load_error:
                return False
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return False
            self.ready.wait(0.05 if left is None else min(0.05, left))
        return True

    def ready_for(self, path) -> bool:
        """The child is alive and has this model folder loaded."""
        return self.alive and self.ready.is_set() and self.model_path == str(path)

    def generate(self, context_ids, settings) -> RemoteGeneration:
        """Start sampling after ``context_ids`` with ``settings`` (a core.sampler.SamplingSettings)."""
        settings.validate()
        with self._lock:
            self._next_id += 1
            g = RemoteGeneration(self, self._next_id)
            self._gens[g.gen_id] = g
        try:
            self._send(("gen", g.gen_id, [int(i) for i in context_ids], asdict(settings)))
        except RemoteError:
            with self._lock:
                self._gens.pop(g.gen_id, None)
            raise
        return g

    def kill(self) -> None:
        """Kill the child (for tests of the fallback): the reader notices and reports it dead."""
        if self._proc is not None:
            self._proc.kill()

    # ------------------------------------------------------------ the reader thread
    def _read(self) -> None:
        # Ctrl+C and SIGTERM belong to the main thread: the kernel may hand a process's signal to
        # any thread that does not block it, and delivered here it would not wake a main thread
        # that sleeps (Python only runs its handler when the main thread next gets to it).
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        conn = self._conn
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # a message that cannot be unpickled: the protocol is broken
                break
            kind = msg[0]
            if kind == "chunk":
                g = self._gens.get(msg[1])
                if g is not None:
                    g._q.put(msg)
            elif kind == "done":
                with self._lock:
                    g = self._gens.pop(msg[1], None)
                if g is not None:
                    g._q.put(msg)
            elif kind == "hello":
                self.started.set()
            elif kind == "loaded":
                if msg[1] == self._load_seq:
                    self.device_name = msg[2]
                    self.ready.set()
            elif kind == "load_failed":
                if msg[1] == self._load_seq:
                    self.load_error = msg[2]
        self._died()

    def _died(self) -> None:
        proc = self._proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self._closing:
            reason = "the sampler process was closed"
        else:
            reason = f"the sampler process stopped (exit code {code})" if code is not None else "the sampler process stopped"
            tail = self._stderr_tail()
            if tail:
                reason += f": {tail}"
        self.dead = reason
        self.ready.clear()
        with self._lock:
            gens, self._gens = list(self._gens.values()), {}
        for g in gens:
            g._q.put(("dead", reason))

    def _stderr_tail(self) -> str:
        f = self._stderr
        if f is None:
            return ""
        try:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 2000))
            lines = [line for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return lines[-1].strip()[:300] if lines else ""


# ---------------------------------------------------------------------------------------------- child side
def _child_main(fd: int, flush_interval: float) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    from multiprocessing.connection import Connection

    conn = Connection(fd)
    commands: queue.SimpleQueue = queue.SimpleQueue()
    lock = threading.Lock()
    current: list = [None, None]  # gen_id, its stop event
    cancelled: set[int] = set()

    def reader() -> None:
        # Commands arrive here while the main thread samples: "stop" takes effect between two
        # characters; a closed socket (the parent is gone, however it ended) ends the process.
        while True:
            try:
                msg = conn.recv()
            except Exception:
                os._exit(0)
            kind = msg[0]
            if kind == "quit":
                os._exit(0)
            if kind == "stop":
                with lock:
                    if current[0] == msg[1]:
                        current[1].set()
                    else:
                        cancelled.add(msg[1])
                continue
            commands.put(msg)

    threading.Thread(target=reader, name="commands", daemon=True).start()

    # The slow part of starting, done before the first command needs it: the compiled decoder
    # (numba) on a CPU, which needs no torch; torch only where numba is missing.
    from tinygpt_tui.fast import decode as jitstep

    def torch_threads() -> None:
        # One thread: a batch-1 decode step in PyTorch is ~15 small ops per layer, too small to split,
        # and each split is a rendezvous of two threads; on a machine whose other core is busy (the
        # app's own process repainting, a training run) the second thread cost most of the speed.
        import torch

        torch.set_num_threads(int(os.environ.get("TINYGPT_SAMPLER_THREADS", "1")))

    if not jitstep.available():
        torch_threads()

    from tinygpt_tui.engine.folder import load_for_sampling
    from tinygpt_tui.sampler import Generation, SamplingSettings, chunked

    conn.send(("hello", os.getpid()))
    loaded = None
    while True:
        msg = commands.get()
        kind = msg[0]
        if kind == "load":
            _, seq, path, device = msg
            try:
                loaded = load_for_sampling(path, device)
                if isinstance(loaded.model, jitstep.JitModel):
                    where = "CPU (compiled)"
                else:
                    from tinygpt_tui.engine.device import describe

                    torch_threads()
                    where = describe(next(loaded.model.parameters()).device)
                # one short generation, so the first real one runs at full speed at once
                for _ in Generation(loaded.model, loaded.tokenizer, "", SamplingSettings(max_new_tokens=8, seed=0)):
                    pass
                conn.send(("loaded", seq, where))
            except TinyGPTError as e:
                loaded = None
                conn.send(("load_failed", seq, str(e)))
            except Exception as e:  # a torch error on a strange file: one line for the parent
                loaded = None
                conn.send(("load_failed", seq, f"{type(e).__name__}: {e}"))
        elif kind == "gen":
            _, gen_id, ids, settings = msg
            stop = threading.Event()
            with lock:
                if gen_id in cancelled:
                    cancelled.discard(gen_id)
                    stop.set()
                current[0], current[1] = gen_id, stop
            generated, error = 0, ""
            try:
                if loaded is None:
                    raise TinyGPTError("no model is loaded in the sampler process")
                gen = Generation(loaded.model, loaded.tokenizer, "", SamplingSettings(**settings), stop, context_ids=ids)
                for text, first in chunked(gen, flush_interval):
                    conn.send(("chunk", gen_id, text, first))
                    generated += len(text)
            except TinyGPTError as e:
                error = str(e)
            except Exception as e:
                error = f"{type(e).__name__}: {e}"
            finally:
                with lock:
                    current[0] = current[1] = None
                conn.send(("done", gen_id, generated, error))


if __name__ == "__main__":
    _child_main(int(sys.argv[1]), float(sys.argv[2]))
