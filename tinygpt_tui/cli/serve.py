"""`tinygpt serve`: the app in a browser, through textual-serve. Each tab runs an app process of its
own (`python -m tinygpt_tui`) on this machine. Only 127.0.0.1 unless --host says otherwise: a served
app can train, write and delete models, and asks no password."""

from __future__ import annotations

import asyncio
import ipaddress
import shlex
import socket
import sys
from pathlib import Path
from typing import Optional

import typer

from tinygpt_tui.cli.common import HELP, Command, ModelsDir, console, fail, friendly, one_line, prose

def check_address(host: str, port: int) -> bool:
    """Bind each address once (a bad host or a taken port: one error line); True if all are loopback."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as e:
        fail(f"cannot serve on host {host!r}: {getattr(e, 'strerror', None) or e}")
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server's own socket does
            try:
                s.bind(addr)
            except OSError as e:
                fail(f"cannot serve on {host}:{port}: {e.strerror or e}")
    return all(ipaddress.ip_address(addr[0].split("%")[0]).is_loopback for *_, addr in infos)


@friendly
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (other machines can connect unless it is a loopback one)."),
    port: int = typer.Option(8000, "--port", "-p", min=1, max=65535, help="Port to listen on."),
    models_dir: Optional[Path] = ModelsDir,
):
    """Serve the app in a browser: each tab runs its own app on this machine; Ctrl+C stops them all."""
    try:
        from textual_serve.server import Server
    except ImportError:
        fail('tinygpt serve needs the textual-serve package: pip install "tinygpt-tui[serve]"')
    if not check_address(host, port):
        prose(console(stderr=True), one_line(f"warning: --host {host} lets other machines open the app, with no password"))
    folder = ["--models-dir", str(Path(models_dir).expanduser().resolve())] if models_dir else []
    # The page tells the browser where to connect back: a wildcard address names no machine.
    shown = socket.gethostname() if host in ("", "0.0.0.0", "::") else host
    url = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"

    class Served(Server):
        tabs: set = set()  # the connections' tasks, each with its app process

        def initialize_logging(self) -> None:
            """No log line per request; warnings and errors still reach stderr."""

        async def on_startup(self, app) -> None:
            typer.echo(one_line(f"tinygpt is served at {url} (Ctrl+C to stop)"))

        async def handle_websocket(self, request):
            self.tabs.add(task := asyncio.current_task())
            try:
                return await super().handle_websocket(request)
            finally:
                self.tabs.discard(task)

        async def on_shutdown(self, app) -> None:
            for task in self.tabs:  # an open tab would hold the server up; cancelled, it tells its app to quit
                task.cancel()

    try:  # exec: the app replaces the shell, so stopping it stops the whole app
        Served("exec " + shlex.join([sys.executable, "-m", "tinygpt_tui", *folder]), host=host, port=port, title="tinygpt", public_url=url).serve()
    except OSError as e:
        fail(f"cannot serve on {host}:{port}: {e.strerror or e}")


def register(app: typer.Typer) -> None:
    app.command("serve", cls=Command, context_settings=HELP)(serve)
