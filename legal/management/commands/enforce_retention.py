"""R29: erase what is past its retention date (the nightly beat job runs the same service).

    manage.py enforce_retention [--batch-size 10000] [--dry-run] [--no-progress]

Resumable and idempotent: stop it at any time and run it again. One order's error does not
stop the sweep (R28): it is logged with the order's id, the others are swept, and the
command exits with status 1 when any order or step failed.
"""

from __future__ import annotations

import gc
import sys

from django.core.management.base import BaseCommand, CommandError

from legal.services import retention
from shop.selectors import today_in_riga

BAR = 30


class Command(BaseCommand):
    help = "Erase personal data past its retention date (R29)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=10000)
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count the ledger rows past their date."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, batch_size: int, dry_run: bool, no_progress: bool, **options):
        if batch_size < 1:
            self.stderr.write("--batch-size must be at least 1")
            sys.exit(2)
        if dry_run:
            count = retention.pending_count(today_in_riga())
            self.stdout.write(f"{count} ledger row(s) past their date.")
            return
        progress = None if no_progress else self._progress
        # The objects of Django's start-up stay for the whole run: keep them out of the
        # cyclic collector's full passes, which the sweep's row tuples trigger often.
        gc.freeze()
        try:
            report = retention.enforce_retention(batch_size=batch_size, progress=progress)
        finally:
            gc.unfreeze()
        if progress is not None:
            self.stderr.write("")
        self.stdout.write(f"Retention sweep for {report.today} in {report.seconds:.1f} s")
        self.stdout.write(f"  ledgers created: {report.ledgers_created}")
        self.stdout.write(f"  ledgers refreshed: {report.ledgers_refreshed}")
        for category, count in sorted(report.erased.items()):
            self.stdout.write(f"  erased {category}: {count} order(s)")
        if report.postponed:
            self.stdout.write(f"  postponed (new facts or a legal hold): {report.postponed}")
        for label, count in sorted(report.dated_rows.items()):
            if count:
                self.stdout.write(f"  erased {label}: {count} row(s)")
        for name, count in sorted(report.swept.items()):
            if count:
                self.stdout.write(f"  swept {name}: {count} row(s)")
        if not report.total:
            self.stdout.write("  nothing was past its date")
        if report.failed:
            self.stdout.write(f"  failed orders: {len(report.failed_orders)}")
            if report.failed_steps:
                self.stdout.write(f"  failed steps: {', '.join(report.failed_steps)}")
            raise CommandError(
                f"{len(report.failed_orders)} order(s) and {len(report.failed_steps)} step(s) "
                "failed; see the log for their ids. Run again once fixed.",
                returncode=1,
            )

    def _progress(self, done: int, total: int, stage: str) -> None:
        filled = BAR if not total else int(BAR * done / total)
        percent = 100 if not total else int(100 * done / total)
        self.stderr.write(
            f"\r{stage}: [{'#' * filled}{'.' * (BAR - filled)}] {percent:3d}% {done}/{total}",
            ending="",
        )
        self.stderr.flush()
