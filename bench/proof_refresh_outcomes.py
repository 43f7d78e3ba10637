"""Failure proof 1 (issue 12): one token request per failure episode, 8 concurrent callers.

Run from the repository root (PostgreSQL running)::

    .venv/bin/python bench/proof_refresh_outcomes.py [--rounds 5] \\
        [--postgres postgres://postgres@127.0.0.1:5432/postgres]

Runs the proof's tests (``tests/test_refresh_outcomes_postgres.py``: 8 threads, and 8
separate processes, on one expired connection whose refresh meets each failure outcome:
``invalid_grant``, ``invalid_client``, a lost answer, a transient 5xx) ``--rounds`` times on
a scratch test database ``test_proof_refresh_outcomes_<pid>``, and prints, per mode and
outcome, the token requests each episode cost (target: 1 every time) and what the 8
callers raised. The tests assert the same; the script adds the repetitions and the table.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(
    r"\[issue-12\] (?P<mode>\w+): (?P<callers>\d+) callers, outcome (?P<outcome>\w+): "
    r"(?P<requests>\d+) token request\(s\); raised (?P<raised>\{.*\})"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    env = {
        **os.environ,
        "DATABASE_URL": args.postgres,
        "INTACCT_TEST_DB_NAME": f"test_proof_refresh_outcomes_{os.getpid()}",
        "INTACCT_REQUIRE_POSTGRES": "1",
    }
    requests: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    raised: dict[tuple[str, str], set[str]] = defaultdict(set)
    failed_rounds = 0
    failures: list[str] = []
    for _ in range(args.rounds):
        done = subprocess.run(
            [
                sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:randomly",
                "-m", "slow or not slow", "-k", "one_token_request_per_failure",
                "tests/test_refresh_outcomes_postgres.py",
            ],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        failed_rounds += done.returncode != 0
        failures += [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
        for match in LINE.finditer(done.stdout + done.stderr):
            key = (match["mode"], match["outcome"])
            requests[key][int(match["requests"])] += 1
            counts = ast.literal_eval(match["raised"])
            raised[key].add(", ".join(f"{name} x{n}" for name, n in sorted(counts.items())))
    print(
        f"8 concurrent callers on one expired connection, {args.rounds} round(s), "
        "PostgreSQL, emulator"
    )
    print(f"  {'mode':<10} {'outcome':<15} {'token requests per episode':<28} raised")
    for (mode, outcome), counts in sorted(requests.items()):
        per = ", ".join(f"{n} request(s) x{times}" for n, times in sorted(counts.items()))
        print(f"  {mode:<10} {outcome:<15} {per:<28} {' | '.join(sorted(raised[(mode, outcome)]))}")
    print(f"  rounds with a failing test: {failed_rounds}")
    for line in failures:
        print(f"    {line}")
    ok = not failed_rounds and all(set(c) == {1} for c in requests.values()) and len(requests) == 8
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
