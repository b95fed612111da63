"""`python -m bench [NAME ...] [options]`: run the benchmarks and print their figures.

Names: checkout, webhook, oscar, deadlines, retention, camt (default: all, in that order).
`oscar` installs django-oscar into var/bench-oscar-venv on first use (PyPI); when it cannot,
its figures say n/a and why.
Needs PostgreSQL (BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432) and
Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/11, flushed before and after).
Every database it creates is named shop_bench*; the generated million orders
(shop_bench_1m) are kept and reused, the rest is dropped.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

from bench.common import Figure, check_services, flush_redis, machine, print_figures, setup_django

NAMES = ("checkout", "webhook", "oscar", "deadlines", "retention", "camt")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0].split(": ", 1)[1]
    )
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run: {', '.join(NAMES)} (default: all)")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="short runs and 100,000 orders, to try the harness")  # fmt: skip
    parser.add_argument("--seconds", type=float,
                        help="measured seconds per endpoint or side (30)")  # fmt: skip
    parser.add_argument("--warmup", type=float,
                        help="warm-up seconds per endpoint or side (3)")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--orders", type=int, help="orders generated (1,000,000)")
    parser.add_argument("--expired", type=int, help="of which past retention (100,000)")
    parser.add_argument("--due", type=int, help="orders due for run_deadlines (10,000)")
    parser.add_argument("--camt-entries", type=int, help="entries in the camt.053 file (50,000)")
    parser.add_argument("--regenerate", action="store_true",
                        help="generate the orders again even if the database exists")  # fmt: skip
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    quick = args.quick
    defaults = {
        "seconds": 5 if quick else 30,
        "warmup": 1 if quick else 3,
        "orders": 100_000 if quick else 1_000_000,
        "expired": 10_000 if quick else 100_000,
        "due": 1_000 if quick else 10_000,
        "camt_entries": 5_000 if quick else 50_000,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.names = [n for n in NAMES if n in args.names] if args.names else list(NAMES)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    problem = check_services()
    if problem:
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    setup_django()
    info = machine()
    print("Benchmarks (DESIGN.md section 12); figures with their goal or ratio.")
    print("command: python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:]))
    for key, value in info.items():
        print(f"{key:>10}: {value}")
    flush_redis()
    started = time.perf_counter()
    sections: list[tuple[str, list[Figure]]] = []
    http = {"concurrency": args.concurrency, "seconds": args.seconds, "warmup": args.warmup}
    try:
        if "checkout" in args.names:
            from bench.throughput import run_checkout

            sections.append(("checkout throughput (gunicorn, 2 workers)", run_checkout(**http)))
            print_figures(*sections[-1])
        if "webhook" in args.names:
            from bench.throughput import run_webhook

            sections.append(("courier webhook throughput (gunicorn, 2 workers)",
                             run_webhook(**http)))  # fmt: skip
            print_figures(*sections[-1])
        if "oscar" in args.names:
            from bench.oscar_bench import run_oscar

            sections.append(("checkout next to django-oscar's OrderCreator (in process)",
                             run_oscar(seconds=args.seconds, warmup=args.warmup)))  # fmt: skip
            print_figures(*sections[-1])
        daily = {n for n in args.names if n in ("deadlines", "retention", "camt")}
        if daily:
            from bench.daily import run_daily

            results = run_daily(
                daily,
                orders=args.orders,
                expired=args.expired,
                due=args.due,
                camt_entries=args.camt_entries,
                regenerate=args.regenerate,
            )
            titles = {
                "deadlines": f"run_deadlines over {args.orders:,} orders",
                "retention": f"enforce_retention over {args.orders:,} orders",
                "camt": f"camt.053 import next to {args.orders:,} orders",
            }
            for name in ("deadlines", "retention", "camt"):
                if name in results:
                    sections.append((titles[name], results[name]))
                    print_figures(*sections[-1])
    finally:
        flush_redis()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n== summary ({time.perf_counter() - started:.0f} s; load average at the end {load})")
    for title, figures in sections:
        print_figures(title, figures)
    missed = [f.name.strip() for _t, figures in sections for f in figures if f.met is False]
    print("\nall goals met" if not missed else f"\ngoals missed: {'; '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
