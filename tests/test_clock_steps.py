"""The clock set wrong while the kiosk runs, with the real kiosk process, CLI and agent handler.

Every process of a test reads the system clock through libfaketime, which
takes its shift from a file at every call, and asks the kernel's NTP state
(adjtimex(2)) through a small preloaded library that answers from another
file: the test edits both while the kiosk runs, as `date -s` and
systemd-timesyncd would on the Pi. The monotonic clock stays real. After
each test the ledger and the paper are checked against the real time.
"""

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import time
import types

import pytest
from support import need, wait_until
from support.config import process_config, write
from test_clock_faults import (
    JAKARTA,
    LIBFAKETIME,
    Run,
    high_water,
    paper_days,
    real_now,
    run,
    status,
)

from edge_agent import handlers
from edge_agent.commands import CommandDispatcher
from edge_agent.errors import CommandError
from kiosk import config as kiosk_config
from kiosk.ledger import Ledger

# adjtimex(2) as the kernel would answer it, from the file $FAKE_NTP_STATE_FILE ("synced" or not).
ADJTIMEX = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>

int adjtimex(struct timex *t) {
    const char *path = getenv("FAKE_NTP_STATE_FILE");
    char word[16] = "";
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f) {
        if (!fgets(word, sizeof word, f)) word[0] = 0;
        fclose(f);
    }
    memset(t, 0, sizeof *t);
    if (strncmp(word, "synced", 6) == 0) {
        t->status = STA_PLL;
        t->maxerror = 1000;
        return TIME_OK;
    }
    t->status = STA_UNSYNC;
    t->maxerror = 16000000;
    return TIME_ERROR;
}
"""


@pytest.fixture(scope="session")
def adjtimex_library(tmp_path_factory):
    need(LIBFAKETIME is not None, "libfaketime (Debian package faketime) is not installed")
    need(shutil.which("cc") is not None, "no C compiler (Debian packages gcc, libc6-dev)")
    directory = tmp_path_factory.mktemp("adjtimex")
    (directory / "adjtimex.c").write_text(ADJTIMEX)
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(directory / "adjtimex.so"),
                    str(directory / "adjtimex.c")], check=True, capture_output=True)
    return directory / "adjtimex.so"


class PiClock:
    """The system clock and the kernel's NTP state, as every process of the test sees them."""

    def __init__(self, directory, library):
        self.shift_file, self.ntp_file = directory / "faketime", directory / "ntp_state"
        self.library = library
        self.set("+0")
        self.ntp(synced=False)  # a Pi without network

    def set(self, shift: str) -> None:
        _replace(self.shift_file, shift)

    def ntp(self, synced: bool) -> None:
        _replace(self.ntp_file, "synced" if synced else "unsynced")

    def env(self) -> dict:
        # FAKETIME_NO_CACHE: the shift file is read at every call, so a change is seen at once.
        return {"PATH": os.environ["PATH"], "LD_PRELOAD": f"{LIBFAKETIME} {self.library}",
                "FAKETIME_TIMESTAMP_FILE": str(self.shift_file), "FAKETIME_NO_CACHE": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKE_NTP_STATE_FILE": str(self.ntp_file)}


def _replace(path, text: str) -> None:
    """Whole or not at all: the kiosk reads the file at every clock reading."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


@pytest.fixture
def pi(tmp_path, adjtimex_library):
    return PiClock(tmp_path, adjtimex_library)


@pytest.fixture
def config(tmp_path):
    return write(tmp_path / "kiosk.toml", process_config(tmp_path, 50))


def until(condition, what: str, timeout_s: float = 30) -> None:
    """Another process writes the ledger; it is all we share, so we look at it until it says so."""
    wait_until(condition, timeout_s, what=what, every_s=0.05)


def recorded_clock(data_dir) -> dict:
    with sqlite3.connect(f"file:{data_dir}/ledger.sqlite3?mode=ro", uri=True) as db:
        row = db.execute("SELECT value FROM kiosk_state WHERE key = 'clock'").fetchone()
    return {} if row is None else json.loads(row[0])


def event_kinds(data_dir) -> list[str]:
    with sqlite3.connect(f"file:{data_dir}/ledger.sqlite3?mode=ro", uri=True) as db:
        return [r[0] for r in db.execute("SELECT kind FROM events ORDER BY id")]


def day(offset_days: int = 0) -> str:
    return (real_now() + dt.timedelta(days=offset_days)).date().isoformat()


# ---------------------------------------------------------------- a step while running

def test_a_ten_day_typo_is_held_across_a_power_cut_and_the_correction_is_taken(config, tmp_path, pi):
    running = Run(config, pi.env())
    assert running.press()[:2] == (day(), 1)
    pi.set("+10d")  # `date -s` with a 1 for a 0, and no network to put it right
    assert running.press()[:2] == (day(), 2), "a ticket for the typo's day"
    until(lambda: recorded_clock(tmp_path).get("verdict") == "unsynced_step", "the kiosk recording the step")
    seen = status(config, pi.env())["clock"]
    assert seen["suspect"] and "set 10 days ahead of the time the kiosk kept" in seen["reason"]
    assert "kiosk clock confirm" in seen["reason"]
    running.power_cut()
    again = Run(config, pi.env())  # the typo survives the cut (fake-hwclock saved it)
    assert again.press()[:2] == (day(), 3)
    assert status(config, pi.env())["clock"]["suspect"] is True
    pi.set("+0")  # corrected by hand: nothing to confirm
    assert again.press()[:2] == (day(), 4)
    until(lambda: recorded_clock(tmp_path).get("verdict") == "ok", "the kiosk recording the corrected clock")
    assert status(config, pi.env())["clock"]["suspect"] is False
    again.power_cut()
    assert high_water(tmp_path) < real_now() + dt.timedelta(minutes=5), "the typo reached the ledger"
    assert paper_days(tmp_path) == [day().replace("-", "")] * 4


def test_a_typo_made_while_the_kiosk_was_stopped_is_held_at_its_start(config, tmp_path, pi):
    first = Run(config, pi.env())
    assert first.press()[:2] == (day(), 1)
    first.power_cut()  # the kiosk stopped (a crash, `systemctl stop`); the Pi did not reboot
    pi.set("+10d")
    again = Run(config, pi.env())  # the time the last run kept, carried by the kernel's monotonic clock
    assert again.press()[:2] == (day(), 2), "a ticket for the typo's day"
    seen = status(config, pi.env())["clock"]
    assert seen["suspect"] and "set 10 days ahead of the time the kiosk kept" in seen["reason"]
    again.power_cut()
    assert high_water(tmp_path) < real_now() + dt.timedelta(minutes=5), "the typo reached the ledger"


def test_an_ntp_step_while_running_is_taken_without_staff(config, tmp_path, pi):
    running = Run(config, pi.env())
    assert running.press()[:2] == (day(), 1)
    pi.set("+2d")  # the Pi booted on a saved time; timesyncd steps it and the kernel says synchronised
    pi.ntp(synced=True)
    assert running.press()[:2] == (day(2), 1)
    until(lambda: recorded_clock(tmp_path).get("day") == day(2), "the kiosk recording the new day")
    assert status(config, pi.env())["clock"]["suspect"] is False
    running.power_cut()


# ---------------------------------------------------------------- staff tools on a wrong clock

def test_quota_set_on_a_wrong_clock_does_not_move_the_kiosks_time(config, tmp_path, pi):
    running = Run(config)  # the kiosk on the right time
    first = running.press()
    pi.set("+11d")  # only the staff tool's clock is wrong
    result = run("quota", "set", "A", day(11), "7", "--config", str(config), env=pi.env())
    assert result.returncode == 0, result.stderr
    assert high_water(tmp_path) < real_now() + dt.timedelta(minutes=5), "the staff tool moved the ledger's time"
    second = running.press()
    assert second[:2] == (day(), 2) and second[2] >= first[2]
    running.power_cut()
    restarted = Run(config)
    assert restarted.press()[:2] == (day(), 3), "after a restart the kiosk ran on the staff tool's time"
    assert status(config)["clock"]["suspect"] is False
    restarted.power_cut()
    assert paper_days(tmp_path) == [day().replace("-", "")] * 3


# ---------------------------------------------------------------- confirmations

def agent_handlers(config):
    return handlers.Handlers(types.SimpleNamespace(kiosk=kiosk_config.load(str(config)), clock=time.time))


def test_an_unanswered_confirmation_is_withdrawn_not_applied_at_the_next_start(config, tmp_path, pi, monkeypatch):
    Run(config).power_cut()  # the kiosk has run here; now it is off
    monkeypatch.setattr(handlers, "KIOSK_ANSWER_WAIT_S", 0.5)
    with pytest.raises(CommandError) as refused:
        agent_handlers(config).confirm_clock({})  # MQTT confirm_clock, nobody there to take it
    assert refused.value.code == "kiosk_busy" and "withdrawn" in str(refused.value)
    asker_died = Ledger(str(tmp_path / "ledger.sqlite3"), "serang-kota", JAKARTA)
    asked = real_now()  # an asker killed before it could withdraw; its deadline not yet passed
    asker_died.add_request("clock_confirm", asked, deadline=asked + dt.timedelta(minutes=5))
    asker_died.close()
    pi.set("+365d")
    ahead = Run(config, pi.env())  # comes back a year ahead: neither old confirmation may take it
    until(lambda: event_kinds(tmp_path).count("request_expired") == 2, "the kiosk expiring the old request")
    assert ahead.press()[:2] == (day(), 1)
    assert "clock_confirmed" not in event_kinds(tmp_path)
    assert status(config, pi.env())["clock"]["suspect"] is True
    ahead.power_cut()


def test_a_confirmation_with_nothing_suspect_changes_nothing(config, tmp_path, pi):
    running = Run(config, pi.env())
    running.press()
    answer = run("clock", "confirm", "--config", str(config))  # through the running kiosk
    assert answer.returncode == 1 and "nothing to confirm: the clock is not suspect" in answer.stderr
    request = json.dumps({"sent_at": real_now().isoformat()}).encode()
    reply = CommandDispatcher({"confirm_clock": agent_handlers(config).confirm_clock}).handle("confirm_clock", request)
    assert reply["ok"] is False and reply["error"]["code"] == "nothing_to_confirm", reply
    running.power_cut()
    here = run("clock", "confirm", "--config", str(config), env=pi.env())  # no kiosk running
    assert here.returncode == 1 and "nothing to confirm" in here.stderr, here.stderr
    assert "clock_confirmed" not in event_kinds(tmp_path)
    assert status(config, pi.env())["clock"]["suspect"] is False


def test_staff_confirm_a_date_set_by_hand_through_the_running_kiosk(config, tmp_path, pi):
    running = Run(config, pi.env())
    running.press()
    pi.set("+10d")  # the right date after all (the office was closed), set by hand: held until confirmed
    until(lambda: recorded_clock(tmp_path).get("verdict") == "unsynced_step", "the kiosk holding the step")
    # Unshifted: libfaketime breaks time.sleep (EINVAL), which this command polls with. The running
    # kiosk, whose clock is the one in question, is what takes the confirmation.
    confirm = run("clock", "confirm", "--config", str(config))
    assert confirm.returncode == 0, confirm.stderr
    assert f"confirmed by the running kiosk: it runs on {day(10)}" in confirm.stdout
    assert "set 10 days ahead of the time the kiosk kept" in confirm.stdout
    assert running.press()[:2] == (day(10), 1)
    running.power_cut()
    assert status(config, pi.env())["clock"]["suspect"] is False


def test_a_date_confirmed_by_mistake_is_undone_by_correcting_and_confirming(config, tmp_path, pi):
    running = Run(config, pi.env())
    assert running.press()[:2] == (day(), 1)
    pi.set("+10d")
    until(lambda: recorded_clock(tmp_path).get("verdict") == "unsynced_step", "the kiosk holding the step")
    assert run("clock", "confirm", "--config", str(config)).returncode == 0  # without checking `date`
    assert running.press()[:2] == (day(10), 1)  # the mistake, on paper
    pi.set("+0")  # corrected: before the ledger's latest time, which the kiosk never leaves on its own
    until(lambda: recorded_clock(tmp_path).get("verdict") == "step_back", "the kiosk holding the step back")
    seen = status(config, pi.env())["clock"]
    assert seen["suspect"] and "set 10 days back from the time the kiosk kept" in seen["reason"]
    confirm = run("clock", "confirm", "--config", str(config))
    assert confirm.returncode == 0 and f"it runs on {day()}" in confirm.stdout, confirm.stderr
    assert running.press()[:2] == (day(), 2)
    running.power_cut()
    restarted = Run(config, pi.env())  # the typo's ticket is still in the ledger; it holds nothing
    assert restarted.press()[:2] == (day(), 3)
    assert status(config, pi.env())["clock"]["suspect"] is False
    restarted.power_cut()
    assert high_water(tmp_path) < real_now() + dt.timedelta(minutes=5)
