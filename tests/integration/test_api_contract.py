"""The whole API keeps its own contract, against the live server: schemathesis with every
check and every phase (examples, coverage, fuzzing, stateful), once with a platform admin's
key and once with a merchant's, over every operation.

Bounded (one example per operation and phase) so the suite stays fast; the same script
runs at length as a benchmark (`benchmarks/api_contract.py --max-examples 5`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "api_contract.py"


def test_every_operation_keeps_its_contract_with_either_key(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--max-examples", "1", "--report-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=880,
    )
    assert done.stdout, done.stderr[-3000:]
    result = json.loads(done.stdout)
    for who, run in result["runs"].items():
        log = Path(run["log"]).read_text()
        assert run["exit_status"] == 0, f"{who}: {run['failures']}\n{log[-6000:]}"
        tested = re.search(r"Tested: (\d+)", log)
        assert tested and int(tested.group(1)) >= 140, log[-3000:]  # every operation
