"""A small load driver: gunicorn started here, and an asyncio (aiohttp) client.

`Server` starts `gunicorn shop.wsgi:application -w 2` on a free loopback port with the
production settings of `bench.common.server_env` and the baseline endpoints on; `drive()`
keeps `concurrency` requests in flight for `seconds` and reports requests per second and
latency percentiles of the successful ones.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import ROOT, server_env

GUNICORN = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "gunicorn")

# A request: method, path, body bytes, headers.
Request = tuple[str, str, bytes, dict[str, str]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn with 2 sync workers (DESIGN.md section 12) on a free port."""

    def __init__(self, database: str, *, workers: int = 2, **env: str):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = server_env(
            database,
            BENCH_BASELINE="true",
            # Throttles are per client address; the load comes from one address.
            THROTTLE_CHECKOUT="1000000/min",
            THROTTLE_WEBHOOK="1000000/min",
            THROTTLE_TOKEN_GUESS="1000000/min",  # noqa: S106  (a rate, not a password)
            **env,
        )
        self.workers = workers
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            [
                GUNICORN,
                "shop.wsgi:application",
                "-w",
                str(self.workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "--backlog",
                "256",
            ],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("gunicorn did not start within 30 s")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@dataclass
class Result:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    first_error: str = ""

    def merge(self, other: Result) -> None:
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.first_error = self.first_error or other.first_error

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(self.statuses.values()) - self.ok

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Latency in milliseconds at percentile p (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000


async def _drive(
    base_url: str,
    make_request: Callable[[int], Request],
    *,
    concurrency: int,
    seconds: float,
    ok_statuses: frozenset[int],
) -> Result:
    import aiohttp

    result = Result(seconds=0.0)
    counter = iter(range(10**12))
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        end = started + seconds

        async def client() -> None:
            while time.perf_counter() < end:
                method, path, body, headers = make_request(next(counter))
                sent = time.perf_counter()
                async with session.request(method, path, data=body, headers=headers) as resp:
                    text = await resp.read()
                elapsed = time.perf_counter() - sent
                result.statuses[resp.status] += 1
                if resp.status in ok_statuses:
                    result.latencies.append(elapsed)
                elif not result.first_error:
                    result.first_error = f"{resp.status}: {text[:300]!r}"

        await asyncio.gather(*(client() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


def drive(
    base_url: str,
    make_request: Callable[[int], Request],
    *,
    concurrency: int,
    seconds: float,
    ok_statuses: frozenset[int] = frozenset({200, 201, 202}),
) -> Result:
    return asyncio.run(
        _drive(
            base_url,
            make_request,
            concurrency=concurrency,
            seconds=seconds,
            ok_statuses=ok_statuses,
        )
    )
