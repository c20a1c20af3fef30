"""Unclean boots: clean reboot, power cut, agent restart within one boot, the 30-day window."""

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from support import FakeSystemClock, at

from edge_agent.boots import BootLog, BootLogError, read_boot_id
from edge_agent.health import collect_health

LAPTOP_ROOT = str(Path(__file__).parent / "fixtures" / "health" / "laptop")


@pytest.fixture
def clock():
    return FakeSystemClock(at("2026-11-23 07:00"))


@pytest.fixture
def agent(tmp_path, clock):
    """Starts the agent's boot log as a fresh process would: a new BootLog on the same data dir."""
    logs = []

    def start(boot_id):
        log = BootLog(str(tmp_path), clock=clock)
        logs.append(log)
        return log, log.start(boot_id)
    yield start
    for log in logs:
        log.close()


def test_first_start_ever_is_a_new_clean_boot(agent):
    log, started = agent("boot-1")
    assert (started.new_boot, started.after_unclean, started.unclean_event) == (True, False, False)
    assert log.summary() == {"after_unclean": False, "unclean_total": 0, "unclean_30d": 0, "boots_recorded": 1,
                             "agent_starts_this_boot": 1}


def test_clean_reboot_is_not_unclean(agent):
    log, _ = agent("boot-1")
    assert log.mark_clean_shutdown()
    log, started = agent("boot-2")
    assert (started.new_boot, started.after_unclean, started.previous_boot_id) == (True, False, "boot-1")
    assert log.summary()["unclean_total"] == 0


def test_power_cut_is_counted_and_announced_once(agent):
    agent("boot-1")  # no mark: the power went off
    log, started = agent("boot-2")
    assert (started.new_boot, started.after_unclean, started.unclean_event) == (True, True, True)
    assert log.summary()["unclean_total"] == 1
    log, restarted = agent("boot-2")  # the agent restarts within the same boot
    assert (restarted.new_boot, restarted.after_unclean, restarted.unclean_event) == (False, True, False)
    assert log.summary()["unclean_total"] == 1


@pytest.mark.parametrize("clean_stop", [True, False])
def test_agent_restart_within_a_boot_is_not_a_new_boot(agent, clean_stop):
    log, _ = agent("boot-1")
    if clean_stop:
        log.mark_clean_shutdown()  # systemctl restart
    log, started = agent("boot-1")  # or a crash and Restart=on-failure
    assert (started.new_boot, started.after_unclean) == (False, False)
    assert log.summary() == {"after_unclean": False, "unclean_total": 0, "unclean_30d": 0, "boots_recorded": 1,
                             "agent_starts_this_boot": 2}


def test_power_cut_after_a_clean_agent_restart_still_counts(agent):
    log, _ = agent("boot-1")
    log.mark_clean_shutdown()
    agent("boot-1")  # started again in the same boot; the earlier mark no longer holds
    log, started = agent("boot-2")
    assert started.after_unclean is True


def test_unclean_boots_in_the_last_30_days(agent, clock):
    agent("boot-1")
    clock.set(at("2026-11-24 07:00"))
    log, _ = agent("boot-2")  # unclean, 40 days before the end
    log.mark_clean_shutdown()
    clock.set(at("2026-12-30 07:00"))
    agent("boot-3")  # clean
    clock.set(at("2027-01-03 07:00"))
    log, started = agent("boot-4")  # unclean, now
    assert started.after_unclean
    assert (log.summary()["unclean_total"], log.summary()["unclean_30d"]) == (2, 1)
    clock.set(at("2027-01-03 07:00") + dt.timedelta(days=31))
    assert log.summary()["unclean_30d"] == 0


def test_boot_log_is_durable(agent, tmp_path):
    log, _ = agent("boot-1")
    assert log._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(tmp_path / "boots.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_boot_id_comes_from_proc(tmp_path):
    assert read_boot_id(LAPTOP_ROOT) == "c0ffee00-1234-4abc-8def-0123456789ab"
    assert read_boot_id(str(tmp_path)) is None
    log = BootLog(str(tmp_path), root=LAPTOP_ROOT)
    assert log.start().boot_id == "c0ffee00-1234-4abc-8def-0123456789ab"
    log.close()


def test_unusable_data_dir_gives_reasons_not_exceptions(tmp_path, make_config):
    log = BootLog(str(tmp_path / "missing"))
    started = log.start("boot-1")
    assert started.new_boot is None and "writable" in started.reason and not started.unclean_event
    assert log.mark_clean_shutdown() is False
    with pytest.raises(BootLogError, match="writable"):
        log.summary()
    health = collect_health(make_config(), boots=log, root=LAPTOP_ROOT, run=lambda argv, timeout: "")
    assert health["boots"] is None and "writable" in health["unavailable"]["boots"]


def test_no_boot_id_gives_a_reason(tmp_path):
    log = BootLog(str(tmp_path), root=str(tmp_path))
    assert "boot_id" in log.start().reason


def test_health_carries_the_boot_summary(agent, make_config):
    agent("boot-1")
    log, _ = agent("boot-2")
    health = collect_health(make_config(), boots=log, root=LAPTOP_ROOT, run=lambda argv, timeout: "")
    assert health["boots"]["after_unclean"] is True and health["boots"]["unclean_total"] == 1
    assert "unclean_boot" in health["alerts"]
