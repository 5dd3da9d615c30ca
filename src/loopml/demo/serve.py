"""The demo's server: ``loopml serve --deployment NAME`` in a child process, on a real port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from loopml.errors import LoopError

__all__ = ["ServerProcess", "free_port"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``loopml --store STORE serve --deployment NAME --port PORT`` as a child process, its
    output in ``log``.

    Args:
        store: the store's path.
        project: the project of the deployment.
        deployment: the deployment's name.
        port: the port (0: a free one).
        log: the file the server's output goes to.
    """

    def __init__(self, store: Path, project: str, deployment: str, port: int, log: Path) -> None:
        self.store = store
        self.project = project
        self.deployment = deployment
        self.port = port or free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._out: IO[Any] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def command(self) -> list[str]:
        """The command line (what to run by hand to serve the same deployment)."""
        return [
            "loopml",
            "--store",
            str(self.store),
            "serve",
            "--deployment",
            self.deployment,
            "--project",
            self.project,
            "--port",
            str(self.port),
        ]

    def start(self, timeout: float = 90.0) -> ServerProcess:
        """Start it and wait until it is ready.

        Raises:
            LoopError: it exited, or was not ready within ``timeout`` seconds (the message
                holds the end of its log).
        """
        import httpx

        self._out = self.log.open("ab")
        argv = [sys.executable, "-m", "loopml.cli", *self.command[1:], "--no-access-log"]
        env = {**os.environ, "LOOPML_PROGRESS": "0"}
        self.process = subprocess.Popen(  # noqa: S603 (our own command line)
            argv, stdout=self._out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LoopError(
                    f"`{' '.join(self.command)}` exited with {self.process.returncode}:\n"
                    f"{self.tail()}"
                )
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise LoopError(
            f"`{' '.join(self.command)}` was not ready after {timeout:.0f} s:\n{self.tail()}"
        )

    def tail(self, lines: int = 20) -> str:
        """The end of the server's log."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        """Stop it gracefully (SIGTERM: it finishes the requests in flight and flushes the
        prediction log), killing it after ``timeout`` seconds."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._out is not None:
            self._out.close()
            self._out = None

    def detach(self) -> int | None:
        """Leave it running (``--keep``); returns its process id."""
        if self._out is not None:
            self._out.close()
            self._out = None
        return None if self.process is None else self.process.pid
