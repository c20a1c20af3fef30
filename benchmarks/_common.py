"""Shared bits of the benchmarks: percentiles, a markdown-style table, a realistic config.

Not a benchmark itself (the leading underscore keeps it out of the list).
Every benchmark works in a :func:`tempfile.TemporaryDirectory` on the local
disk and talks to nothing but its own child processes.
"""

import datetime as dt
import math
import os
import platform
import sys

# A busy Disdukcapil office: four services, quota 150 each, ten service days ahead.
SERVICES = (
    ("A", "Perekaman e-KTP", "GPIO17", "GPIO27"),
    ("B", "Kartu Keluarga", "GPIO22", "GPIO23"),
    ("C", "Akta Kelahiran", "GPIO5", "GPIO6"),
    ("D", "Pindah Datang", "GPIO13", "GPIO19"),
)
QUOTA = 150
HORIZON = 10

CONFIG_TOML = """\
id = "kiosk-1"
data_dir = "{data_dir}"

[office]
id = "serang-kota"
name = "Dinas Kependudukan dan Pencatatan Sipil Kota Serang"
timezone = "Asia/Jakarta"

[calendar]
open_weekdays = ["mon", "tue", "wed", "thu", "fri"]
holidays = ["2026-12-25", "2027-01-01"]
opens_at = "08:00"
last_ticket_at = "14:00"
closes_at = "15:00"
booking_horizon_days = {horizon}

{services}
[printer]
backend = "file"
path = "{data_dir}/printer.out"
create = true
paper_width_mm = {paper}

[buttons]
backend = "keyboard"
cooldown_ms = 0

[log]
level = "info"
format = "json"
"""


def config_text(data_dir: str, paper: int = 58, quota: int = QUOTA, horizon: int = HORIZON) -> str:
    services = "".join(
        f'[[services]]\ncode = "{code}"\nname = "{name}"\ndaily_quota = {quota}\n'
        f'button = "{button}"\nled = "{led}"\n\n'
        for code, name, button, led in SERVICES)
    return CONFIG_TOML.format(data_dir=data_dir.replace("\\", "/"), paper=paper, horizon=horizon,
                              services=services)


class FakeSystemClock:
    """Stands in for time.time, so a benchmark decides which service day and hour it is."""

    def __init__(self, moment: dt.datetime):
        self.value = moment.timestamp()

    def set(self, moment: dt.datetime) -> None:
        self.value = moment.timestamp()

    def __call__(self) -> float:
        return self.value


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
