"""The quick benchmarks still run: a renamed method must not leave a benchmark silently broken.

Only that they run and print their table; their numbers are for the report, not for tests.
"""

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("name, heading", [("issuing", "# Issuing overhead"), ("ticket_size", "# Ticket size"),
                                           ("detection", "|"), ("liveness", "# Kiosk liveness")])
def test_quick_benchmark_runs(name, heading):
    result = subprocess.run([sys.executable, f"benchmarks/{name}.py", "--quick"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert heading in result.stdout


@pytest.mark.parametrize("name", sorted(p.stem for p in Path("benchmarks").glob("[!_]*.py")))
def test_every_benchmark_starts_from_the_repo_root(name):
    """`python benchmarks/NAME.py` imports what it measures: benchmarks/lobby.py is named like the lobby
    package, and this folder comes first on sys.path of a script run from it."""
    result = subprocess.run([sys.executable, f"benchmarks/{name}.py", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
