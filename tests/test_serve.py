"""`tinygpt serve`: the app in a real browser (headless Chromium, driven over the DevTools protocol),
reachable from this machine only by default, and stopped cleanly by Ctrl+C."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import aiohttp  # textual-serve's own HTTP library: the DevTools client here
import pytest

from conftest import ROOT, make_models_dir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tinygpt(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tinygpt_tui", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def app_processes(models_dir: Path) -> list[int]:
    """The app processes serving this models folder (their command line names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or one that just ended
            continue
        if b"tinygpt_tui" in cmd and str(models_dir).encode() in cmd and b"serve" not in cmd:
            found.append(int(entry.name))
    return found


class Served:
    """A running `tinygpt serve`: its address line read before anything else."""

    def __init__(self, models_dir: Path, *args: str):
        self.port = free_port()
        self.proc = tinygpt("serve", "--port", str(self.port), "--models-dir", str(models_dir), *args)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stdout], daemon=True).start()
        try:
            first = self.lines.get(timeout=60)
        except queue.Empty:
            raise AssertionError(f"no address line within 60 s: {self.stop()}") from None
        assert first.startswith("tinygpt is served at http://"), first
        self.url = first.split(" at ", 1)[1].split()[0]
        deadline = time.monotonic() + 30  # the line comes as the server starts, a moment before it listens
        while not connects("127.0.0.1", self.port):
            assert self.proc.poll() is None and time.monotonic() < deadline, f"not listening: {self.stop()}"
            time.sleep(0.02)

    def stop(self, sig=signal.SIGINT, group: bool = False, timeout: float = 30) -> tuple[int | str, str]:
        """Send sig (to the whole process group when group, as Ctrl+C in a terminal does): the exit
        status ("hung" if it took over timeout seconds, then killed) and stderr."""
        if self.proc.poll() is None:
            (os.killpg if group else os.kill)(self.proc.pid, sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = "hung"
            self.proc.wait()
        return code, self.proc.stderr.read()


@contextmanager
def serving(models_dir: Path, *args: str):
    served = Served(models_dir, *args)
    try:
        yield served
    finally:
        served.stop()


# ------------------------------------------------------------------ command line
def test_bad_host_and_taken_port_are_one_line_errors(tmp_path):
    for args, words in ((("--host", "no-such-host.invalid"), "cannot serve on host"), (("--port", "0"), "--port")):
        p = tinygpt("serve", *args)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 2 and err.count("\n") == 1 and err.startswith("error:") and words in err, err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = tinygpt("serve", "--port", str(port), "--models-dir", str(tmp_path))
        out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and err.startswith("error:") and f"127.0.0.1:{port}" in err and err.count("\n") == 1, err
    assert out == ""  # no address printed for a server that never started


def test_without_textual_serve_says_which_extra(tmp_path):
    # A textual_serve package that cannot be imported, first on the path: what a machine without it sees
    (tmp_path / "textual_serve").mkdir()
    (tmp_path / "textual_serve" / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    p = tinygpt("serve", env=env)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and err.count("\n") == 1 and 'pip install "tinygpt-tui[serve]"' in err, err


def other_addresses() -> list[str]:
    """Addresses of this machine other than 127.0.0.1: its outward one (when it has a route out) and 127.0.0.2."""
    found = ["127.0.0.2"]  # loopback too, but a server bound to 127.0.0.1 alone does not answer there
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # a UDP "connect" sends nothing: it only picks the outward interface
            found.append(s.getsockname()[0])
        except OSError:
            pass
    return found


def connects(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=5).close()
        return True
    except OSError:
        return False


def test_local_only_by_default_and_reachable_when_host_says_so(tmp_path):
    models = make_models_dir(tmp_path)
    with serving(models) as served:
        assert served.url == f"http://127.0.0.1:{served.port}"
        assert connects("127.0.0.1", served.port)
        for host in other_addresses():
            assert not connects(host, served.port), f"reachable on {host}"
    with serving(models, "--host", "0.0.0.0") as served:
        for host in other_addresses():
            assert connects(host, served.port), f"not reachable on {host}"
        code, err = served.stop()
    assert code == 0 and err.startswith("warning: --host 0.0.0.0") and err.count("\n") == 1, err


async def drain(ws):
    async for _ in ws:
        pass


@pytest.mark.parametrize("group", [True, False], ids=["ctrl-c", "sigint-to-server"])
async def test_ctrl_c_stops_server_and_its_apps(tmp_path, group):
    models = make_models_dir(tmp_path)
    served = Served(models)
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{served.url}/ws?width=100&height=30") as ws:
            msg = await asyncio.wait_for(ws.receive(), timeout=60)  # the app's first frame: it runs
            assert msg.type == aiohttp.WSMsgType.BINARY and msg.data
            assert app_processes(models)
            # a browser keeps reading: it sees the server close the tab and answers at once
            reading = asyncio.create_task(drain(ws))
            code, err = await asyncio.to_thread(served.stop, signal.SIGINT, group, 10)  # it takes about 1 s
            await asyncio.wait_for(reading, timeout=30)
    finally:
        served.stop(signal.SIGKILL, group=True)
    assert code == 0 and "Traceback" not in err, err
    assert app_processes(models) == []


# ------------------------------------------------------------------ in a browser
# Keep the page's terminal (xterm.js) where the test can read it: textual-serve's script assigns it to
# `this.terminal` of an object of its own, so a setter on Object.prototype sees it go by.
HOOK = """Object.defineProperty(Object.prototype, "terminal", {configurable: true, set(v) {
  Object.defineProperty(this, "terminal", {value: v, writable: true, configurable: true, enumerable: true});
  if (v && typeof v.write === "function" && !window.__term) window.__term = v;
}});"""
SCREEN = """(() => { const t = window.__term; if (!t) return ""; const b = t.buffer.active, rows = [];
  for (let i = 0; i < t.rows; i++) { const l = b.getLine(b.viewportY + i); rows.push(l ? l.translateToString(true) : ""); }
  return rows.join("\\n"); })()"""


class Page:
    """One browser tab over the DevTools protocol: commands answered in order, events ignored."""

    def __init__(self, ws):
        self.ws, self.last = ws, 0

    async def call(self, method: str, **params):
        self.last += 1
        await self.ws.send_json({"id": self.last, "method": method, "params": params})
        while True:
            reply = json.loads((await asyncio.wait_for(self.ws.receive(), timeout=60)).data)
            if reply.get("id") == self.last:
                assert "error" not in reply, reply
                return reply["result"]

    async def screen(self) -> str:
        return (await self.call("Runtime.evaluate", expression=SCREEN, returnByValue=True))["result"]["value"]

    async def until(self, check, timeout: float, what: str) -> str:
        """The terminal's text, once check(text) holds; fails after timeout seconds, showing the last text."""
        deadline = time.monotonic() + timeout
        while not check(screen := await self.screen()):
            assert time.monotonic() < deadline, f"timed out waiting for {what}; the page shows:\n{screen}"
            await asyncio.sleep(0.05)
        return screen

    async def key(self, name: str, code: int, text: str = ""):
        for kind in ("keyDown", "keyUp"):
            await self.call("Input.dispatchKeyEvent", type=kind, key=name, code=name, windowsVirtualKeyCode=code,
                            **({"text": text} if text and kind == "keyDown" else {}))


@contextmanager
def chromium(profile: Path):
    """Headless Chromium with its DevTools port; the port is read from the profile it writes it into."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium")
    proc = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1400,900",
                             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            assert proc.poll() is None and time.monotonic() < deadline, "chromium did not start"
            time.sleep(0.05)
        yield int(port_file.read_text().split()[0])
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def status(screen: str) -> str:
    """The app's status line: the row above the footer."""
    rows = screen.rstrip("\n").split("\n")
    return rows[-2] if len(rows) >= 2 else ""


def generating(screen: str) -> int:
    """The characters generated so far, as the status line counts them while generating (else 0)."""
    words = status(screen).replace(",", "").split()
    return int(words[2]) if words[:1] == ["generating"] and words[3:4] == ["chars"] else 0


def pane(screen: str) -> str:
    """The output pane's text: the right-hand box of the rows where the sidebar and the pane meet."""
    return "\n".join(row.split("││", 1)[1].strip("│ ") for row in screen.split("\n") if "││" in row)


@pytest.mark.slow
async def test_the_app_in_a_browser_lists_models_and_streams_text(tmp_path):
    models = make_models_dir(tmp_path)
    with serving(models) as served, chromium(tmp_path / "profile") as devtools:
        async with aiohttp.ClientSession() as http:
            targets = await (await http.get(f"http://127.0.0.1:{devtools}/json/list")).json()
            tab = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.call("Page.enable")
                await page.call("Page.addScriptToEvaluateOnNewDocument", source=HOOK)
                await page.call("Page.navigate", url=served.url)

                # the sidebar lists the folder's models; Enter loads the first (alpha)
                await page.until(lambda s: "alpha" in s and "beta" in s and "2 ready, 1 broken" in s, 120, "the model list")
                await page.call("Runtime.evaluate", expression="window.__term.focus()")
                await page.key("Enter", 13, "\r")
                await page.until(lambda s: status(s).split()[:1] == ["alpha"], 120, "alpha to load")

                # a long generation (length 500 -> 500000), so the test sees it grow and stops it
                await page.key("F6", 117)
                for _ in range(3):
                    await page.key("Tab", 9, "\t")
                await page.call("Input.insertText", text="500000")  # replaces the field's text, selected on focus
                await page.key("Enter", 13, "\r")
                await page.until(lambda s: "length 500000" in s, 60, "the length setting")
                await page.call("Input.insertText", text="ROMEO:")
                await page.key("Enter", 13, "\r")

                # streamed: while it generates, the count grows and the output pane shows new text
                first = await page.until(lambda s: generating(s) > 0, 120, "a generation")
                second = await page.until(lambda s: generating(s) > generating(first) and pane(s) != pane(first), 60, "more text")
                assert sum(c.isalpha() for c in pane(second)) > 100, second
                await page.key("Escape", 27, "\x1b")
                await page.until(lambda s: "stopped" in status(s), 60, "Esc to stop it")
        code, err = served.stop(timeout=10)
    assert code == 0 and "Traceback" not in err, err
    assert app_processes(models) == []
