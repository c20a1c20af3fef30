"""Shared bits of the benchmarks: percentiles, a markdown-style table, a realistic config, the test harness.

Not a benchmark itself (the leading underscore keeps it out of the list).
Every benchmark works in a :func:`tempfile.TemporaryDirectory` on the local
disk and talks to nothing but its own child processes.
"""

import argparse
import datetime as dt
import math
import os
import platform
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The checkout's packages before this folder, which a script run from it has first on sys.path:
# benchmarks/lobby.py is named like the lobby package it measures.
sys.path.insert(0, REPO)
# The test harness (tests/support): the config builder, the kiosk process launcher, the broker, the proxy.
sys.path.append(os.path.join(REPO, "tests"))

from support import config as _config  # noqa: E402

# A busy Disdukcapil office: four services, quota 150 each, ten service days ahead.
SERVICES = tuple((code, name, button, led) for code, (name, button, led) in _config.SERVICES.items())
QUOTA = 150
HORIZON = 10


def office_config(data_dir: str, paper: int = 58, quota: int = QUOTA, horizon: int = HORIZON) -> dict:
    """The busy office as a dict shaped like the TOML file (support.config.busy_office)."""
    return _config.busy_office(data_dir.replace("\\", "/"), paper=paper, quota=quota, horizon=horizon)


def config_text(data_dir: str, paper: int = 58, quota: int = QUOTA, horizon: int = HORIZON) -> str:
    return _config.toml(office_config(data_dir, paper, quota, horizon))


def arguments(doc: str, quick: str) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring's first paragraph, and --quick (``quick`` says what it runs)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    return parser


def percentile(values, p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p % of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f} MiB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(headers, rows) -> str:
    """A plain-text, markdown-style table with padded columns."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(row) for row in cells[1:]])


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} CPU, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, SQLite {_sqlite_version()}")


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def service_days(start: dt.date, count: int, weekdays=range(5)) -> list[dt.date]:
    """``count`` weekday dates from ``start`` on (forward), or back from it if ``count`` < 0."""
    step = dt.timedelta(days=1 if count > 0 else -1)
    days, day = [], start
    while len(days) < abs(count):
        if day.weekday() in weekdays:
            days.append(day)
        day += step
    return days


def say(*args) -> None:
    """Progress to stderr, so stdout stays the table."""
    print(*args, file=sys.stderr, flush=True)
