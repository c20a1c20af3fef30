"""Device health from fixture trees of a Raspberry Pi and a laptop, fake commands, and this machine."""

import copy
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent import health_sources
from edge_agent.health import alerts, collect_health, health_changed
from edge_agent.health_sources import (
    Host,
    Unavailable,
    count_mmc_errors,
    decode_throttled,
    find_mount,
    run_command,
)

FIXTURES = Path(__file__).parent / "fixtures" / "health"
PI, LAPTOP = str(FIXTURES / "pi"), str(FIXTURES / "laptop")
SOURCES = ("system_boot_id", "uptime_s", "model", "cpu_temp_c", "throttling", "load", "memory", "disk", "data_mount",
           "mmc_errors", "clock_synced", "boots", "kiosk")
BITS = [("now", "under_voltage", 0), ("now", "arm_freq_capped", 1), ("now", "throttled", 2),
        ("now", "soft_temp_limit", 3), ("since_boot", "under_voltage", 16),
        ("since_boot", "arm_freq_capped", 17), ("since_boot", "throttled", 18),
        ("since_boot", "soft_temp_limit", 19)]


class FakeCommands:
    """The commands at the hardware edge: argv[0] -> its stdout, or an exception it raises; absent if missing."""

    def __init__(self, **answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, timeout):
        self.calls.append((argv[0], timeout))
        answer = self.answers.get(argv[0])
        if answer is None:
            raise FileNotFoundError(2, "No such file or directory", argv[0])
        if isinstance(answer, BaseException):
            raise answer
        return answer


def pi_commands(throttled="0x50005", **more):
    answers = {"vcgencmd": f"throttled={throttled}\n", "timedatectl": "yes\n",
               "dmesg": (FIXTURES / "pi-dmesg.txt").read_text()}
    return FakeCommands(**{**answers, **more})


def statvfs_with(free_percent, total_blocks=7_500_000, frsize=4096):
    free = int(total_blocks * free_percent / 100)
    return lambda path: os.statvfs_result((frsize, frsize, total_blocks, free, free, 0, 0, 0, 0, 255))


@pytest.fixture
def cfg(make_config):
    return make_config()


def pi_health(cfg, **kw):
    kw = {"root": PI, "run": pi_commands(), "statvfs": statvfs_with(30.0), **kw}
    return collect_health(cfg, **kw)


def assert_nulls_have_reasons(health):
    assert set(SOURCES) <= set(health)
    assert {k for k in SOURCES if health[k] is None} == set(health["unavailable"])
    assert all(isinstance(r, str) and r for r in health["unavailable"].values())
    assert json.loads(json.dumps(health)) == health


# ---------------------------------------------------------------- a Raspberry Pi

def test_pi_collects_every_source(cfg):
    health = pi_health(cfg)
    assert_nulls_have_reasons(health)
    assert health["cpu_temp_c"] == 62.8
    assert health["throttling"] == {
        "raw": "0x50005",
        "now": {"under_voltage": True, "arm_freq_capped": False, "throttled": True, "soft_temp_limit": False},
        "since_boot": {"under_voltage": True, "arm_freq_capped": False, "throttled": True,
                       "soft_temp_limit": False}}
    assert health["load"] == [0.52, 0.58, 0.59]
    assert health["memory"] == {"total_bytes": 1891540 * 1024, "available_bytes": 1453412 * 1024,
                                "used_percent": 23.2}
    assert health["disk"]["free_percent"] == 30.0 and health["disk"]["path"] == cfg.data_dir
    assert health["data_mount"] == {"mount_point": "/", "device": "/dev/mmcblk0p2", "fs": "ext4",
                                    "readonly": True}
    assert health["mmc_errors"] == {"count": 5, "last": "[ 8123.890123] EXT4-fs (mmcblk0p2): Remounting "
                                    "filesystem read-only", "source": "dmesg"}
    assert (health["uptime_s"], health["system_boot_id"]) == (86523, "3f1c2b4e-8d2a-4c41-9a57-0e6b5d7f9c10")
    assert health["model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert health["clock_synced"] is True
    assert health["alerts"] == ["under_voltage_now", "under_voltage_since_boot", "throttled_now",
                                "data_readonly", "sd_errors"]
    assert set(health["unavailable"]) == {"boots", "kiosk"}  # no boot log given, no ledger yet
    assert health["software"]["antrean"] == "0.1.0"


def test_pi_with_good_power_has_no_power_alerts(cfg):
    health = pi_health(cfg, run=pi_commands(throttled="0x0"))
    assert health["throttling"]["raw"] == "0x0"
    assert not any(health["throttling"]["now"].values()) and not any(health["throttling"]["since_boot"].values())
    assert not {"under_voltage_now", "under_voltage_since_boot", "throttled_now"} & set(health["alerts"])


def test_sticky_under_voltage_alone_is_still_an_alert(cfg):
    health = pi_health(cfg, run=pi_commands(throttled="0x10000"))
    assert health["alerts"][0] == "under_voltage_since_boot"


@pytest.mark.parametrize("group,name,bit", BITS)
def test_every_throttled_bit_decodes_by_name(group, name, bit):
    decoded = decode_throttled(1 << bit)
    on = [(g, n) for g in ("now", "since_boot") for n, v in decoded[g].items() if v]
    assert on == [(group, name)]
    assert decoded["raw"] == hex(1 << bit)


@pytest.mark.parametrize("answer,reason", [
    (subprocess.CalledProcessError(255, ["vcgencmd"], "", "VCHI initialization failed\n"), "VCHI initialization"),
    (subprocess.TimeoutExpired(["vcgencmd"], 2.0), "no answer within 2 s"),
    ("error=1 error_msg=\"Command not registered\"\n", "unexpected vcgencmd"),
])
def test_vcgencmd_failures_are_reasons(cfg, answer, reason):
    health = pi_health(cfg, run=pi_commands(vcgencmd=answer))
    assert health["throttling"] is None and reason in health["unavailable"]["throttling"]


def test_commands_get_the_short_timeout(cfg):
    run = pi_commands()
    pi_health(cfg, run=run)
    assert {name for name, _ in run.calls} == {"vcgencmd", "timedatectl", "dmesg"}
    assert {timeout for _, timeout in run.calls} == {2.0}


def test_hot_cpu_and_low_disk_are_alerts(cfg, tmp_path):
    root = tmp_path / "pi"
    shutil.copytree(PI, root)
    (root / "sys/class/thermal/thermal_zone0/temp").write_text("83512\n")
    health = pi_health(cfg, root=str(root), statvfs=statvfs_with(4.0))
    assert health["cpu_temp_c"] == 83.5
    assert {"cpu_hot", "disk_low"} <= set(health["alerts"])


# ---------------------------------------------------------------- SD card and kernel log

def test_kmsg_is_read_without_a_subprocess(cfg, tmp_path):
    root = tmp_path / "pi"
    shutil.copytree(PI, root)
    (root / "dev").mkdir()
    shutil.copy(FIXTURES / "kmsg-records.txt", root / "dev/kmsg")
    run = pi_commands()
    health = pi_health(cfg, root=str(root), run=run)
    assert health["mmc_errors"] == {"count": 2, "last": "mmc0: card never left busy state", "source": "/dev/kmsg"}
    assert "dmesg" not in {name for name, _ in run.calls}


def test_kernel_log_not_permitted_says_how_to_allow_it(monkeypatch, tmp_path):
    def denied(path):
        raise PermissionError(1, "Operation not permitted", path)

    monkeypatch.setattr(health_sources, "_read_kmsg", denied)
    with pytest.raises(Unavailable, match="CAP_SYSLOG"):
        health_sources.mmc_errors(Host(str(tmp_path)))


def test_dmesg_not_permitted_says_how_to_allow_it(cfg):
    failed = subprocess.CalledProcessError(1, ["dmesg"], "", "dmesg: read kernel buffer failed: Operation not "
                                           "permitted\n")
    health = pi_health(cfg, run=pi_commands(dmesg=failed))
    reason = health["unavailable"]["mmc_errors"]
    assert "Operation not permitted" in reason and "CAP_SYSLOG" in reason


def test_benign_boot_lines_are_not_sd_errors():
    lines = (FIXTURES / "pi-dmesg.txt").read_text().splitlines()
    benign = [line for line in lines if float(line[1:13]) < 100]  # everything before the card failed
    assert count_mmc_errors(benign) == {"count": 0, "last": None}


MOUNTS = """\
/dev/mmcblk0p2 / ext4 rw,noatime 0 0
/dev/sda1 /var/lib/antrean ext4 ro,relatime 0 0
/dev/sdb1 /media/usb\\040stick vfat rw,relatime 0 0
/dev/mmcblk0p1 /boot/firmware vfat rw,errors=remount-ro 0 0
"""


@pytest.mark.parametrize("path,point,readonly", [
    ("/var/lib/antrean", "/var/lib/antrean", True),
    ("/var/lib/antrean/sub", "/var/lib/antrean", True),
    ("/var/lib/antrean2", "/", False),  # a sibling that merely starts with the same letters
    ("/media/usb stick/data", "/media/usb stick", False),
    ("/boot/firmware", "/boot/firmware", False),  # errors=remount-ro is not ro
])
def test_find_mount_takes_the_longest_mount_point(path, point, readonly):
    found = find_mount(MOUNTS, path)
    assert (found["mount_point"], found["readonly"]) == (point, readonly)


def test_a_later_mount_on_the_same_point_is_on_top():
    remounted = MOUNTS + "/dev/mmcblk0p2 / ext4 ro,noatime 0 0\n"
    assert find_mount(remounted, "/home/pi")["readonly"] is True


# ---------------------------------------------------------------- a laptop: sources missing

def test_laptop_without_pi_sources_gives_nulls_with_reasons(cfg):
    health = collect_health(cfg, root=LAPTOP, run=FakeCommands(), statvfs=statvfs_with(55.0))
    assert_nulls_have_reasons(health)
    missing = health["unavailable"]
    assert set(missing) == {"model", "cpu_temp_c", "throttling", "mmc_errors", "clock_synced", "boots", "kiosk"}
    assert "thermal_zone0" in missing["cpu_temp_c"]
    assert "vcgencmd not installed" in missing["throttling"]
    assert "dmesg" in missing["mmc_errors"]
    assert "timedatectl" in missing["clock_synced"] and "timesyncd" in missing["clock_synced"]
    assert health["load"] == [1.25, 0.98, 0.77]
    assert health["data_mount"]["readonly"] is False
    assert health["alerts"] == []


@pytest.mark.parametrize("answer,flag,expected", [
    ("no\n", "file", False),
    (None, "file", True),   # timedatectl absent: systemd-timesyncd's flag file decides
    (None, "dir", False),   # timesyncd runs but has not synchronised since boot
])
def test_clock_sync_from_timedatectl_or_timesyncd(tmp_path, answer, flag, expected):
    (tmp_path / "run/systemd/timesync").mkdir(parents=True)
    if flag == "file":
        (tmp_path / "run/systemd/timesync/synchronized").touch()
    host = Host(str(tmp_path), FakeCommands(timedatectl=answer))
    assert health_sources.clock_synced(host) is expected


def test_missing_data_dir_and_a_buggy_source_cost_one_field_each(cfg, tmp_path):
    def broken(path):
        raise RuntimeError("statvfs exploded")

    health = collect_health(cfg, root=LAPTOP, run=FakeCommands(), statvfs=broken)
    assert health["disk"] is None and "RuntimeError: statvfs exploded" in health["unavailable"]["disk"]
    assert health["load"] is not None
    gone = dataclasses.replace(cfg, data_dir=str(tmp_path / "not-yet"))
    health = collect_health(gone, root=LAPTOP, run=FakeCommands())
    assert "does not exist yet" in health["unavailable"]["disk"]


# ---------------------------------------------------------------- commands never hang

def test_run_command_returns_stdout_and_kills_a_hanging_command():
    assert run_command([sys.executable, "-c", "print('throttled=0x0')"]) == "throttled=0x0\n"
    hang = [sys.executable, "-c", "import select; select.select([], [], [])"]
    with pytest.raises(subprocess.TimeoutExpired):
        run_command(hang, timeout=0.2)
    with pytest.raises(FileNotFoundError):
        run_command(["antrean-no-such-command"])


# ---------------------------------------------------------------- what is worth publishing now

def variant(health, **changes):
    """A copy with changes to top-level or nested keys ("kiosk__printer"), alerts recomputed."""
    new = copy.deepcopy(health)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = new
        for key in parents:
            target = target[key]
        target[leaf] = value
    new["alerts"] = alerts(new)
    return new


@pytest.fixture
def base(cfg):
    health = pi_health(cfg, run=pi_commands(throttled="0x0"))
    health["kiosk"] = {"printer": "ok", "clock": {"suspect": False, "reason": None}, "owed_prints": [],
                       "unconfirmed_prints": [], "paper_warning": False}
    health["data_mount"]["readonly"] = False
    health["mmc_errors"]["count"] = 0
    health["alerts"] = alerts(health)
    return health


def test_first_collection_is_always_published(base):
    assert health_changed(None, base)


@pytest.mark.parametrize("changes", [
    {"load": [3.9, 2.0, 1.1]},
    {"memory__used_percent": 91.0},
    {"cpu_temp_c": 66.1},
    {"uptime_s": 99999},
    {"disk__free_percent": 29.0},
    {"kiosk__services": [{"code": "A", "taken_today": 2}]},
])
def test_routine_drift_is_not_news(base, changes):
    assert not health_changed(base, variant(base, **changes))


@pytest.mark.parametrize("changes", [
    {"kiosk__printer": "paper_near_end"},
    {"kiosk__printer": "offline"},
    {"throttling": decode_throttled(0x50005)},
    {"throttling": decode_throttled(0x80000)},  # only the sticky soft-limit bit: still a flag change
    {"data_mount__readonly": True},
    {"clock_synced": False},
    {"disk__free_percent": 9.9},
    {"cpu_temp_c": 80.1},
    {"mmc_errors__count": 1},
    {"system_boot_id": "another-boot"},
    {"kiosk": None},
    {"kiosk__clock": {"suspect": True, "reason": "behind"}},
    {"kiosk__owed_prints": ["A-003 2026-11-23"]},
])
def test_facts_are_news(base, changes):
    assert health_changed(base, variant(base, **changes))


def test_more_sd_errors_after_the_first_are_not_news_again(base):
    assert not health_changed(variant(base, mmc_errors__count=3), variant(base, mmc_errors__count=7))


@pytest.mark.parametrize("old,new,news", [
    (81.0, 78.0, False),  # still hot within the hysteresis band
    (81.0, 74.9, True),   # clearly cool again
    (79.9, 80.0, True),
    (70.0, 79.9, False),
])
def test_temperature_crosses_80_with_hysteresis(base, old, new, news):
    assert health_changed(variant(base, cpu_temp_c=old), variant(base, cpu_temp_c=new)) is news


@pytest.mark.parametrize("old,new,news", [
    (9.5, 9.0, False),
    (9.5, 10.5, False),   # back over the line, but not clearly
    (9.5, 11.2, True),
    (10.2, 9.8, True),
])
def test_free_disk_crosses_10_percent_with_hysteresis(base, old, new, news):
    assert health_changed(variant(base, disk__free_percent=old), variant(base, disk__free_percent=new)) is news


# ---------------------------------------------------------------- this machine, for real

def test_collects_from_this_machines_real_proc_and_sys(cfg):
    health = collect_health(cfg)
    assert_nulls_have_reasons(health)
    load = health["load"]
    assert isinstance(load, list) and len(load) == 3 and all(isinstance(x, float) and x >= 0 for x in load)
    assert 0 <= health["memory"]["used_percent"] <= 100
    assert 0 <= health["disk"]["free_percent"] <= 100
    assert isinstance(health["uptime_s"], int) and health["uptime_s"] > 0
    assert isinstance(health["system_boot_id"], str) and len(health["system_boot_id"]) == 36
    assert isinstance(health["data_mount"]["readonly"], bool)
    assert health["cpu_temp_c"] is None or -40 < health["cpu_temp_c"] < 125
    assert health["clock_synced"] in (True, False, None)
    assert health["mmc_errors"] is None or health["mmc_errors"]["count"] >= 0
    assert isinstance(health["collect_ms"], float)


def test_a_source_value_the_schema_refuses_costs_that_field_only(cfg, monkeypatch):
    monkeypatch.setattr(health_sources, "uptime_s", lambda host: "86523 s")  # a parser bug: text, not a number
    health = collect_health(cfg, root=LAPTOP, run=FakeCommands())
    assert health["uptime_s"] is None and health["load"] is not None
    assert health["unavailable"]["uptime_s"] == "Health.uptime_s must be a whole number, got '86523 s'"
