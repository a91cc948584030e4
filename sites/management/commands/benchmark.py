import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from sites.benchmarking import available_benchmarks, machine, peak_rss_mb
from sites.demo import require_demo


class Command(BaseCommand):
    help = (
        "Run a benchmark on synthetic data (it may replace the registry's data) and print the result "
        "as one JSON object on the last line. Only with MIZANI_DEMO."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The benchmark to run, e.g. pages.")
        parser.add_argument("--rows", type=int, default=100_000,
                            help="Size of the data the benchmarked path works on (default 100000).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed for data and samples.")

    def handle(self, *, name, rows, seed, **options):
        benchmarks = available_benchmarks()
        if name not in benchmarks:
            raise CommandError(f"Unknown benchmark {name!r}. Available: {', '.join(sorted(benchmarks))}.")
        if rows < 1:
            raise CommandError("--rows must be at least 1.")
        # Benchmarks replace data with synthetic data: never on a real installation.
        require_demo()
        started = time.perf_counter()
        result = benchmarks[name](rows=rows, seed=seed, log=self.stdout.write)
        report = {"benchmark": name, "rows": rows, **result, "database": connection.vendor}
        report.setdefault("seconds", round(time.perf_counter() - started, 2))
        report.setdefault("peak_rss_mb", peak_rss_mb())
        report["machine"] = machine(connection)
        self.stdout.write(json.dumps(report))
