"""`enforce_retention` in a process of its own, as the beat job runs it (bench/daily.py).

    python -m bench.retention_job AS_OF_ISO

Runs the command "as of" the moment the data was generated, then once more (it must be
idempotent), and prints one JSON line; the parent reads the process's peak memory.
"""

from __future__ import annotations

import io
import json
import sys
import time
from datetime import datetime


def main() -> None:
    import django

    django.setup()
    import time_machine
    from django.core.management import call_command

    moment = datetime.fromisoformat(sys.argv[1])
    with time_machine.travel(moment, tick=True):
        out = io.StringIO()
        started = time.perf_counter()
        call_command("enforce_retention", no_progress=True, stdout=out)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        call_command("enforce_retention", no_progress=True, stdout=io.StringIO())
        again = time.perf_counter() - started
    print(
        json.dumps(
            {"seconds": seconds, "again_seconds": again, "output": out.getvalue().strip()[-500:]}
        )
    )


if __name__ == "__main__":
    main()
