"""What every benchmark shares: the PostgreSQL server and Redis they use, their own
databases (all named `shop_bench*`), Django set-up in the runner process, the machine
description and the way figures are printed.

The runner process is configured like production: DEBUG off, a real broker (Redis db 11,
nobody consumes it, it is flushed afterwards) so `delay()` only enqueues, and emails to
memory.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# The server the benchmarks create their databases on, and the Redis db they may flush.
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip(
    "/"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
DB_PREFIX = "shop_bench"
SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789abcdef"  # noqa: S105


def database_url(name: str) -> str:
    assert name.startswith(DB_PREFIX), name
    return f"{POSTGRES_URL}/{name}"


def server_env(database: str, **extra: str) -> dict[str, str]:
    """The environment of a process of the shop as production runs it, on `database`."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "shop.settings",
            "DJANGO_DEBUG": "false",
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": database_url(database),
            "CONN_MAX_AGE": "60",
            "CELERY_BROKER_URL": REDIS_URL,
            "CACHE_URL": "rediscache://" + REDIS_URL.split("://", 1)[1],
            "EMAIL_URL": "memorymail://",
            "LOG_LEVEL": "WARNING",
            "MEDIA_ROOT": str(ROOT / "var" / "bench-media"),
        }
    )
    env.update(extra)
    return env


_django_ready = False


def setup_django() -> None:
    """Configure Django in this process (once), pointed at a placeholder bench database."""
    global _django_ready
    if _django_ready:
        return
    os.environ.update(server_env(f"{DB_PREFIX}_idle"))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    _django_ready = True


# --- Databases ----------------------------------------------------------------------------


def _admin():
    import psycopg

    return psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True)


def check_services() -> str | None:
    """None when PostgreSQL and Redis answer, else what is missing."""
    try:
        with _admin() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_URL} does not answer ({type(exc).__name__}: {exc})"
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL} does not answer ({type(exc).__name__})"
    return None


def database_exists(name: str) -> bool:
    with _admin() as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            is not None
        )


def drop_database(name: str) -> None:
    from psycopg import sql

    assert name.startswith(DB_PREFIX), name
    release_database(name)
    with _admin() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def create_database(name: str, *, template: str | None = None) -> None:
    from psycopg import sql

    assert name.startswith(DB_PREFIX), name
    drop_database(name)
    with _admin() as conn:
        if template:
            release_database(template)
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [template],
            )
            # FILE_COPY copies the files after a checkpoint instead of writing the whole
            # database through the WAL (PostgreSQL 15's default): much faster for 1M orders.
            strategy = sql.SQL(" STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else "")
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(
                    sql.Identifier(name), sql.Identifier(template), strategy
                )
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def release_database(name: str) -> None:
    """Close this process's Django connection if it points at `name`."""
    if not _django_ready:
        return
    from django.db import connection

    if connection.settings_dict["NAME"] == name:
        connection.close()


@contextmanager
def use_database(name: str) -> Iterator[None]:
    """Point this process's Django connection at `name` for the block."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    setup_django()
    previous = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = name
    ContentType.objects.clear_cache()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = previous
        ContentType.objects.clear_cache()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def commit_latency_ms(name: str, *, commits: int = 50) -> float:
    """How long one small write transaction takes to commit (the WAL flush), in ms."""
    import psycopg

    with psycopg.connect(database_url(name)) as conn:
        conn.execute("CREATE TABLE bench_commit_probe (x int)")
        conn.commit()
        started = time.perf_counter()
        for _ in range(commits):
            conn.execute("INSERT INTO bench_commit_probe VALUES (1)")
            conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_commit_probe")
        conn.commit()
    return seconds / commits * 1000


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


# --- Machine and printing -------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    postgres = "unknown"
    try:
        with _admin() as conn:
            settings = [
                f"{name} {conn.execute(f'SHOW {name}').fetchone()[0]}"
                for name in ("shared_buffers", "synchronous_commit")
            ]
            version = conn.execute("SHOW server_version").fetchone()[0]
            postgres = f"{version}; {', '.join(settings)}"
    except Exception:  # noqa: S110  (a description, not a result)
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": socket.gethostname(),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "postgresql": postgres,
        "load": "{:.2f} {:.2f} {:.2f} (load average 1, 5, 15 min, at the start)".format(
            *os.getloadavg()
        ),
        "git": _git_revision(),
    }


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


@dataclass
class Figure:
    """One printed figure: its value and, when it has one, its goal and whether it is met."""

    name: str
    value: str
    goal: str = ""
    met: bool | None = None

    def line(self, width: int) -> str:
        verdict = {True: "met", False: "MISSED", None: ""}[self.met]
        goal = f"goal {self.goal}" if self.goal else ""
        return f"  {self.name:<{width}}  {self.value:>16}  {goal:<22} {verdict}".rstrip()


def print_figures(title: str, figures: list[Figure]) -> None:
    width = max((len(f.name) for f in figures), default=10)
    print(f"\n== {title}", flush=True)
    for figure in figures:
        print(figure.line(width), flush=True)


def note(text: str) -> None:
    print(f"   {text}", flush=True)
