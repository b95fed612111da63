"""The daily jobs over a million orders (DESIGN.md section 12).

On a clone of the generated database (bench/dataset.py), "as of" the moment it was
generated (time-machine, so the data never ages between runs):

- `run_deadlines` with nothing due (goal under 1 s), and the plans of its queries;
- `run_deadlines` with 10,000 due (5,000 past the contact deadline, 5,000 past the
  payment due date: a burst of orders nobody confirmed or paid);
- `enforce_retention` over the expired orders (goal under 60 s, peak memory under 300 MB),
  run as its own process like the beat job would;
- the camt.053 import of 50,000 entries (goal under 30 s) and its re-import
  (bench/camt_bench.py), against the million orders.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench.common import (
    PYTHON,
    ROOT,
    Figure,
    create_database,
    drop_database,
    note,
    server_env,
    use_database,
)
from bench.dataset import Dataset, Generator, ensure_template

CLONE = "shop_bench_run"
PARTS = ("deadlines", "retention", "camt")


def run_daily(
    parts: set[str],
    *,
    orders: int,
    expired: int,
    due: int,
    camt_entries: int,
    regenerate: bool,
) -> dict[str, list[Figure]]:
    dataset = ensure_template(orders=orders, expired=expired, regenerate=regenerate)
    started = time.perf_counter()
    create_database(CLONE, template=dataset.name)
    note(f"cloned {dataset.name} into {CLONE} in {time.perf_counter() - started:.0f} s")
    results: dict[str, list[Figure]] = {}
    try:
        with use_database(CLONE):
            if "deadlines" in parts:
                results["deadlines"] = deadlines(dataset, due=due)
            if "retention" in parts:
                results["retention"] = retention(dataset)
            if "camt" in parts:
                results["camt"] = camt(camt_entries)
    finally:
        drop_database(CLONE)
    return results


# --- run_deadlines ----------------------------------------------------------------------------


class QueryLog:
    """Counts every statement; keeps the first `keep` (SQL, params) for EXPLAIN."""

    def __init__(self, keep: int = 200):
        self.count = 0
        self.keep = keep
        self.statements: list[tuple[str, tuple]] = []

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        if len(self.statements) < self.keep:
            self.statements.append((sql, tuple(params or ())))
        return execute(sql, params, many, context)


def _run_deadlines_as_of(moment: datetime) -> tuple[float, dict[str, int], QueryLog]:
    import time_machine
    from django.db import connection

    from shop.deadlines import run_all

    log = QueryLog()
    with time_machine.travel(moment, tick=True), connection.execute_wrapper(log):
        started = time.perf_counter()
        report = run_all(now=moment)
        seconds = time.perf_counter() - started
    return seconds, report, log


def explain(log: QueryLog) -> list[str]:
    """EXPLAIN ANALYZE of the distinct reads the jobs made: which index each one used."""
    from django.db import connection

    seen, out = set(), []
    for sql, params in log.statements:
        if not sql.lstrip().upper().startswith("SELECT") or sql in seen:
            continue
        seen.add(sql)
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}", params)
            plan = [row[0] for row in cursor.fetchall()]
        shown = sql if len(sql) < 200 else sql[:197] + "..."
        out.append(shown)
        out.extend(f"    {line}" for line in plan)
    return out


def deadlines(dataset: Dataset, *, due: int) -> list[Figure]:
    moment = dataset.as_of + timedelta(minutes=1)
    runs = [_run_deadlines_as_of(moment) for _ in range(3)]
    slowest = max(seconds for seconds, _r, _q in runs)
    handled = sum(runs[0][1].values())
    note(f"run_deadlines, nothing due: jobs {runs[0][1]}; {runs[0][2].count} queries")
    note("plans of its reads (EXPLAIN ANALYZE on the million orders):")
    plans = explain(runs[0][2])
    for line in plans:
        note("  " + line)
    seq_scans = sum("Seq Scan on orders_order" in line for line in plans)
    figures = [
        Figure(
            f"run_deadlines, {dataset.orders:,} orders, nothing due (slowest of 3)",
            f"{slowest * 1000:.0f} ms",
            "< 1 s",
            met=slowest < 1.0 and handled == 0,
        ),
        Figure(
            "  median of 3",
            f"{statistics.median(s for s, _r, _q in runs) * 1000:.0f} ms",
        ),
        Figure("  queries", str(runs[0][2].count)),
        Figure("  sequential scans of orders_order", str(seq_scans), "0", met=seq_scans == 0),
    ]
    if handled:
        note(f"!! {handled} item(s) were due in the generated data: {runs[0][1]}")

    # 10,000 due: a burst of orders nobody confirmed or paid.
    started = time.perf_counter()
    Generator.add_due_orders(dataset, no_contact=due // 2, unpaid=due - due // 2)
    note(f"added {due:,} due orders in {time.perf_counter() - started:.0f} s")
    seconds, report, queries = _run_deadlines_as_of(moment)
    cancelled = report.get("no_contact", 0) + report.get("unpaid", 0)
    note(f"run_deadlines, {due:,} due: jobs {report}; {queries.count} queries")
    figures += [
        Figure(
            f"run_deadlines, {due:,} due",
            f"{seconds:.1f} s",
            f"all {due:,} cancelled",
            met=cancelled == due,
        ),
        Figure("  orders cancelled per second", f"{cancelled / seconds:.0f}"),
        Figure("  queries per cancelled order", f"{queries.count / max(cancelled, 1):.1f}"),
    ]
    seconds_again, report_again, _q = _run_deadlines_as_of(moment)
    figures.append(
        Figure(
            "  run again right after (idempotent)",
            f"{seconds_again * 1000:.0f} ms",
            "0 handled",
            met=sum(report_again.values()) == 0,
        )
    )
    return figures


# --- enforce_retention --------------------------------------------------------------------------


def retention_available() -> bool:
    from django.core.management import get_commands

    return "enforce_retention" in get_commands()


def retention(dataset: Dataset) -> list[Figure]:
    if not retention_available():
        note("`enforce_retention` does not exist yet (legal/): nothing to measure.")
        return [
            Figure(
                f"enforce_retention, {dataset.expired:,} expired orders",
                "n/a",
                "< 60 s, < 300 MB",
            )
        ]
    moment = dataset.as_of + timedelta(minutes=2)
    process = subprocess.Popen(
        [PYTHON, "-m", "bench.retention_job", moment.isoformat()],
        cwd=ROOT,
        env=server_env(CLONE),
        stdout=subprocess.PIPE,
        text=True,
    )
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"enforce_retention failed: {output}")
    result = json.loads(output.strip().splitlines()[-1])
    peak_mb = usage.ru_maxrss / 1024
    note(f"enforce_retention said: {result['output']!r}")
    again = result["again_seconds"]
    return [
        Figure(
            f"enforce_retention, {dataset.expired:,} expired orders",
            f"{result['seconds']:.1f} s",
            "< 60 s",
            met=result["seconds"] < 60,
        ),
        Figure("  peak memory of the process", f"{peak_mb:.0f} MB", "< 300 MB", met=peak_mb < 300),
        Figure("  run again right after (idempotent)", f"{again:.1f} s"),
    ]


# --- camt.053 import -----------------------------------------------------------------------------


def camt(entries: int) -> list[Figure]:
    from bench import camt_bench

    with tempfile.TemporaryDirectory() as tmp:
        from django.conf import settings

        settings.MEDIA_ROOT = str(Path(tmp) / "media")
        figures = camt_bench.run(entries, 200, Path(tmp))
    note(
        "camt.053: "
        + ", ".join(f"{k} {v}" for k, v in figures.items() if k not in ("database", "entries"))
    )
    same_ok = (
        figures["reimport_same_file_new"] == 0 and figures["reimport_changed_nothing"] == "True"
    )
    other_ok = figures["reimport_other_file_new"] == 0
    return [
        Figure(
            f"camt.053 import, {entries:,} entries",
            f"{figures['import_s']:.1f} s",
            "< 30 s",
            met=figures["import_s"] < 30,
        ),
        Figure(
            "  matched / unmatched",
            f"{figures['matched']} / {figures['unmatched']}",
        ),
        Figure(
            "  import the same file again",
            f"{figures['reimport_same_file_s']:.2f} s",
            "changes nothing",
            met=same_ok,
        ),
        Figure(
            "  same entries in another file",
            f"{figures['reimport_same_credits_other_file_s']:.1f} s",
            "changes nothing",
            met=other_ok and figures["reimport_changed_nothing"] == "True",
        ),
    ]
