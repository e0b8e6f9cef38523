"""The production CLI never needs bench/ (the image leaves it out): `hemoptysis-cds replay` runs with every import
of `bench` refused, and the other commands parse their arguments without importing it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "fixtures" / "scenarios" / "severity" / "undetermined-no-vitals.json"

# A meta-path finder that refuses `bench` and its submodules, and says so on stderr: bench/ sits in the
# repository, so without it the import would succeed and the test could not fail.
_BLOCKED_RUN = """
import sys
class RefuseBench:
    def find_spec(self, name, path=None, target=None):
        if name == "bench" or name.startswith("bench."):
            print("IMPORTED-BENCH " + name, file=sys.stderr)
            raise ModuleNotFoundError("bench is not installed here", name=name)
        return None
sys.meta_path.insert(0, RefuseBench())
from server.cli import main
code = main(sys.argv[1:])
assert not any(m == "bench" or m.startswith("bench.") for m in sys.modules), sorted(sys.modules)
sys.exit(code)
"""


def _cli(*arguments: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEMOPTYSIS_CDS_")}
    return subprocess.run([sys.executable, "-c", _BLOCKED_RUN, *arguments], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_replay_runs_with_bench_unimportable():
    assert SCENARIO.exists() and SCENARIO.with_name(SCENARIO.stem + ".cards.json").exists()
    replayed = _cli("replay", str(SCENARIO))
    assert "IMPORTED-BENCH" not in replayed.stderr, replayed.stderr[-2000:]
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    assert "1 passed, 0 differ" in replayed.stdout + replayed.stderr


def test_help_and_request_from_bundle_parse_without_bench():
    helped = _cli("--help")
    assert helped.returncode == 0 and "IMPORTED-BENCH" not in helped.stderr, helped.stderr[-2000:]
    assert "replay" in helped.stdout and "bench" in helped.stdout
    refused = _cli("request-from-bundle", str(REPO / "no-such-bundle.json"))
    assert "IMPORTED-BENCH" not in refused.stderr, refused.stderr[-2000:]
    assert refused.returncode == 2 and "no such file" in refused.stderr
