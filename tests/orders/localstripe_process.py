"""localstripe as a subprocess of the test session, on a free loopback port.

Started through `orders.payments.devserver` (loopback only, state in a file of this
session), so it can be stopped and started again on the same port with the payments and
refunds it already made: what a network failure in the middle of a refund looks like.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from django.conf import settings

HOST = "127.0.0.1"
START_TIMEOUT = 30  # seconds for the process to answer on its port


class LocalStripeUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


class LocalStripe:
    def __init__(self, *, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.store = workdir / "localstripe.pickle"
        self.log_path = workdir / "localstripe.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, *, fresh: bool = False) -> None:
        command = [
            sys.executable,
            "-m",
            "orders.payments.devserver",
            "--port",
            str(self.port),
            "--store",
            str(self.store),
        ]
        if fresh:
            command.append("--fresh")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalStripeUnavailable(self._log_tail())
            if port_answers(self.port):
                return
            time.sleep(0.05)  # waiting for another process to listen, not for time
        self.stop()
        raise LocalStripeUnavailable(f"no answer on port {self.port}: {self._log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        deadline = time.monotonic() + 10
        while port_answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def register_webhook(self, *, url: str, secret: str, events: list[str]) -> None:
        """localstripe's own route: POST /_config/webhooks/<name> (url, secret, events)."""
        fields = [("url", url), ("secret", secret)] + [("events[]", e) for e in events]
        body = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(  # noqa: S310  loopback http only
            f"{self.url}/_config/webhooks/shop", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert response.status == 200

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except FileNotFoundError:
            return ""
