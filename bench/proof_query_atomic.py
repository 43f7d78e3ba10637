"""Proof 8 (issue 12): a query-to-storage run killed at random points of a 10-page query.

Run from the repository root (PostgreSQL and Redis running)::

    .venv/bin/python bench/proof_query_atomic.py          # --trials 100

The trial engine of proof 3 (``bench/proof_worker_kill.py``) with the kill moved to a
uniformly random moment of the run: while a page is fetched, while the rows are upserted,
around the commit, or after it. Every trial renames the emulator's 250 vendors, so the
previous state (names of trial ``i - 1`` and their watermark) and the new one (names of
trial ``i``, the newest row's timestamp) differ in every row. A thread reads the stored
names and the watermark in one statement every 5 ms throughout: every snapshot it reads,
before, during and after the kill and the redelivery, must be the whole previous state or
the whole new one. Uses a scratch database ``proof_query_atomic`` and Redis database 8.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proof_worker_kill import PAGES, run_kill_trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    from bench.proof_harness import bench_environment, broker_url, cluster, print_figures

    with bench_environment("proof_query_atomic") as emulator:
        with cluster(broker_url(8), emulator.base_url, PROOF_COMPANY_CONCURRENCY="0") as group:
            group.worker(concurrency=1)
            figures = run_kill_trials(group, emulator, args.trials, mode="random", seed=8)
        print_figures(
            f"proof 8: query_to_storage killed at random points, {args.trials} trials "
            f"(250 rows in {PAGES} pages)",
            figures.figures(),
        )
        for line in figures.violations[:20]:
            print("  VIOLATION", line)


if __name__ == "__main__":
    main()
