"""The clock gone wrong across power cuts, with the real kiosk process and a really wrong clock.

The kiosk runs as a process with libfaketime preloaded (Debian's
``faketime``), which shifts the system clock the process reads as a bad RTC
or a mistyped ``date`` would; the monotonic clock stays real, as on a Pi.
Between runs the kiosk is SIGKILLed: a power cut. After every run the
ledger and the paper are checked against the real time.
"""

import datetime as dt
import glob
import json
import os
import sqlite3
import subprocess
from zoneinfo import ZoneInfo

import pytest
from support import need, wait_until
from support.config import process_config, write
from support.kiosk_process import kiosk_argv, start_kiosk
from test_power_cut import PAYLOAD

from kiosk.ledger import Ledger

JAKARTA = ZoneInfo("Asia/Jakarta")
A_YEAR_AHEAD, THREE_DAYS_BEHIND = "+365d", "-3d"
# Preloaded directly, not through the `faketime` wrapper, whose child would outlive a SIGKILL.
LIBFAKETIME = next(iter(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")), None)


@pytest.fixture(autouse=True)
def faketime():
    need(LIBFAKETIME is not None, "libfaketime (Debian package faketime) is not installed")


@pytest.fixture
def config(tmp_path):
    return write(tmp_path / "kiosk.toml", process_config(tmp_path, 50))


def shifted(shift: str | None) -> dict:
    """A process's whole environment with its system clock shifted by ``shift`` (libfaketime)."""
    env = {"PATH": os.environ["PATH"]}
    if shift:
        # The monotonic clock stays real, as on a Pi (a faked one hangs Python's timed waits).
        env.update(LD_PRELOAD=LIBFAKETIME, FAKETIME=shift, FAKETIME_DONT_FAKE_MONOTONIC="1")
    return env


def run(*args, env=None) -> subprocess.CompletedProcess:
    """``kiosk ARGS`` to its end, in ``env`` (default: the real clock and only PATH)."""
    return subprocess.run(kiosk_argv(None, *args), env=env or shifted(None), capture_output=True, text=True,
                          timeout=60)


class Run:
    """One run of the kiosk process between power cuts, in ``env`` (its clock)."""

    def __init__(self, config, env=None):
        self.data_dir = config.parent
        self.process = start_kiosk(config, env=env or shifted(None), timeout_s=60)

    def press(self, key="a"):
        before = len(tickets(self.data_dir))
        self.process.press(key)
        # Another process; the ledger is what we share, so we look at it until it says so.
        wait_until(lambda: len(tickets(self.data_dir)) > before and tickets(self.data_dir)[-1][3] == "printed",
                   30, what="the press printed", every_s=0.05)
        return tickets(self.data_dir)[-1]

    def power_cut(self):
        self.process.kill()


def tickets(data_dir) -> list[tuple]:
    with sqlite3.connect(f"file:{data_dir}/ledger.sqlite3?mode=ro", uri=True) as db:
        return db.execute("SELECT service_day, number, issued_at, status FROM tickets ORDER BY id").fetchall()


def high_water(data_dir) -> dt.datetime:
    ledger = Ledger(str(data_dir / "ledger.sqlite3"), "serang-kota", JAKARTA, readonly=True)
    try:
        return ledger.high_water()
    finally:
        ledger.close()


def status(config, env=None) -> dict:
    result = run("status", "--config", str(config), "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def paper_days(data_dir) -> list[str]:
    """The service day of every ticket on paper, from its signed QR payload."""
    return [p.split(b":")[4].decode() for p in PAYLOAD.findall((data_dir / "printer.out").read_bytes())]


def real_now() -> dt.datetime:
    return dt.datetime.now(JAKARTA)


def test_a_year_ahead_after_a_power_cut_issues_on_the_real_day_until_confirmed(config, tmp_path):
    today = real_now().date().isoformat()
    first = Run(config)
    first.press()
    first.power_cut()
    ahead = Run(config, shifted(A_YEAR_AHEAD))  # the Pi comes back from the cut with its clock a year ahead
    day, number, _, _ = ahead.press()
    assert (day, number) == (today, 2), "a ticket for next year, or a number given twice"
    assert high_water(tmp_path) < real_now() + dt.timedelta(hours=1), "the leap reached the ledger"
    seen = status(config, shifted(A_YEAR_AHEAD))["clock"]
    assert seen["suspect"] and "365 days ahead" in seen["reason"] and "kiosk clock confirm" in seen["reason"]
    ahead.power_cut()
    corrected = Run(config)  # the network time is back: nothing to confirm
    assert corrected.press()[:2] == (today, 3)
    assert status(config)["clock"]["suspect"] is False
    corrected.power_cut()
    assert paper_days(tmp_path) == [today.replace("-", "")] * 3


def test_staff_confirm_a_leap_through_the_running_kiosk(config, tmp_path):
    Run(config).power_cut()  # the kiosk has run here before: its ledger has a time
    ahead = Run(config, shifted(A_YEAR_AHEAD))
    assert ahead.press()[0] == real_now().date().isoformat()
    # Unshifted: libfaketime breaks time.sleep, which this command polls with. The running kiosk,
    # whose clock is a year ahead, is what takes the confirmation.
    confirm = run("clock", "confirm", "--config", str(config))
    next_year = (real_now() + dt.timedelta(days=365)).date()
    assert confirm.returncode == 0, confirm.stderr
    assert f"confirmed by the running kiosk: it runs on {next_year}" in confirm.stdout
    next_year = (real_now() + dt.timedelta(days=365)).date().isoformat()
    assert ahead.press()[:2] == (next_year, 1)
    ahead.power_cut()
    assert status(config, shifted(A_YEAR_AHEAD))["clock"]["suspect"] is False


def test_staff_confirm_with_no_kiosk_running(config, tmp_path):
    Run(config).power_cut()
    assert status(config, shifted(A_YEAR_AHEAD))["clock"]["suspect"] is True
    confirm = run("clock", "confirm", "--config", str(config), env=shifted(A_YEAR_AHEAD))
    assert confirm.returncode == 0 and "365 days ahead" in confirm.stdout, confirm.stderr
    assert status(config, shifted(A_YEAR_AHEAD))["clock"]["suspect"] is False


def test_three_days_behind_after_a_power_cut_never_issues_into_the_past(config, tmp_path):
    today = real_now().date().isoformat()
    first = Run(config)
    first.press()
    first.power_cut()
    behind = Run(config, shifted(THREE_DAYS_BEHIND))  # no network, no RTC: the clock three days behind
    day, number, issued_at, _ = behind.press()
    assert (day, number) == (today, 2)
    assert issued_at >= tickets(tmp_path)[0][2]
    seen = status(config, shifted(THREE_DAYS_BEHIND))["clock"]
    assert seen["suspect"] and "behind the ledger's latest time" in seen["reason"]
    behind.power_cut()
    assert paper_days(tmp_path) == [today.replace("-", "")] * 2
