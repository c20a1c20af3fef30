import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from kiosk import config as kconfig

JAKARTA = ZoneInfo("Asia/Jakarta")

BASE_TOML = """
id = "kiosk-1"
data_dir = "{data_dir}"
[office]
id = "serang-kota"
name = "Disdukcapil Kota Serang"
[calendar]
holidays = ["2026-12-25"]
booking_horizon_days = 5
[[services]]
code = "A"
name = "Perekaman e-KTP"
daily_quota = 3
button = "GPIO17"
led = "GPIO27"
[[services]]
code = "B"
name = "Kartu Keluarga"
daily_quota = 150
button = "GPIO22"
led = "GPIO23"
[printer]
backend = "dummy"
[buttons]
cooldown_ms = 0
"""


def at(text: str) -> dt.datetime:
    """A moment in office time: at("2026-11-23 09:00")."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=JAKARTA)


@pytest.fixture
def make_config(tmp_path):
    def make(extra: str = "", replace: dict | None = None):
        text = BASE_TOML.format(data_dir=tmp_path)
        for old, new in (replace or {}).items():
            assert old in text, old
            text = text.replace(old, new)
        return kconfig.loads(text + extra, source="test")
    return make


class FakeSystemClock:
    """Stands in for time.time: the test sets the system clock like a bad RTC would.

    ``monotonic`` stands in for time.monotonic, which no one can set: ``set`` moves only the
    system clock, ``advance`` lets real time pass on both."""

    def __init__(self, moment: dt.datetime):
        self.value = moment.timestamp()
        self.elapsed = 0.0
        self.ntp_synced = False  # what adjtimex(2) would say: a time server keeps this clock

    def ntp_state(self) -> bool:
        return self.ntp_synced

    def set(self, moment: dt.datetime) -> None:
        self.value = moment.timestamp()

    def advance(self, delta: dt.timedelta) -> None:
        self.value += delta.total_seconds()
        self.elapsed += delta.total_seconds()

    def monotonic(self) -> float:
        return self.elapsed

    def __call__(self) -> float:
        return self.value


def need(available: bool, reason: str) -> None:
    """Skip a test whose system component is missing, except in CI, where that is a failure."""
    import os

    if available:
        return
    if os.environ.get("ANTREAN_TEST_REQUIRE_SYSTEM"):
        pytest.fail(f"{reason} (CI must run this: install it with bash .ci/system-packages)")
    pytest.skip(reason)
