"""Run mypy over the project and fail on any finding that is not in .ci/mypy-baseline.txt.

A finding is keyed by file, error code and message, not by line number, so moving code does not break the check;
the same key may stand several times (the count is compared). `--update` rewrites the baseline from this run
(after fixing findings, or, reviewed, when code moved). Stale entries (fixed findings) are reported, not failed.
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / ".ci" / "mypy-baseline.txt"
FINDING = re.compile(r"^(?P<path>[^:]+):\d+(?::\d+)?: error: (?P<message>.*?)\s+\[(?P<code>[a-z0-9-]+)\]$")


def findings() -> Counter[str]:
    run = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--no-pretty"], cwd=REPO,
                         capture_output=True, text=True)
    if run.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        sys.exit(f"mypy failed to run (exit {run.returncode}):\n{run.stdout}{run.stderr}")
    keys = Counter()
    for line in run.stdout.splitlines():
        match = FINDING.match(line.strip())
        if match:
            keys[f"{match['path']}: [{match['code']}] {match['message']}"] += 1
    return keys


def read_baseline() -> Counter[str]:
    if not BASELINE.exists():
        return Counter()
    return Counter(line for line in BASELINE.read_text().splitlines() if line and not line.startswith("#"))


def main(argv: list[str]) -> int:
    found = findings()
    if "--update" in argv:
        header = "# mypy findings accepted when the type check was introduced; .ci/mypy_baseline.py --update\n"
        BASELINE.write_text(header + "".join(f"{key}\n" for key in sorted(found.elements())))
        print(f"mypy baseline: {sum(found.values())} findings written to {BASELINE.relative_to(REPO)}")
        return 0
    accepted = read_baseline()
    new = found - accepted
    fixed = accepted - found
    if fixed:
        print(f"mypy: {sum(fixed.values())} baseline findings are gone; shrink the list: "
              f"python .ci/mypy_baseline.py --update")
    if new:
        print(f"mypy: {sum(new.values())} new findings (not in {BASELINE.relative_to(REPO)}):")
        for key in sorted(new.elements()):
            print(f"  {key}")
        return 1
    print(f"mypy: no new findings ({sum(found.values())} accepted in the baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
