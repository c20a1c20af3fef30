"""The staff commands as a technician runs them: real processes, real ledger, real exit codes."""

import json
import sqlite3
import subprocess
import sys

import pytest
from support import wait_until
from support.config import process_config, write
from support.kiosk_process import start_kiosk

from kiosk.printer.decode import decode


def kiosk(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True,
                          input=stdin, timeout=60, env={"PATH": "/usr/bin:/bin"})


@pytest.fixture
def config(tmp_path):
    path = write(tmp_path / "kiosk.toml", process_config(tmp_path, 5))
    result = kiosk("run", "--config", str(path), stdin="aab\n")
    assert result.returncode == 0, result.stderr
    return path


def today(config):
    return json.loads(kiosk("status", "--config", str(config), "--json").stdout)["services"][0]["today"]


def test_status_json_and_text(config):
    status = json.loads(kiosk("status", "--config", str(config), "--json").stdout)
    a, b = status["services"]
    assert (a["taken_today"], a["remaining_today"], b["taken_today"]) == (2, 3, 1)
    assert status["printer"] == "ok" and status["clock"]["suspect"] is False
    text = kiosk("status", "--config", str(config)).stdout
    assert "A Perekaman e-KTP" in text and "printer: ok" in text


def test_quota_set_never_below_issued(config):
    result = kiosk("quota", "set", "A", "today", "1", "--config", str(config))
    assert result.returncode == 1
    assert "2 tickets are already issued; set 2 or more" in result.stderr
    assert kiosk("quota", "set", "a", "today", "2", "--config", str(config)).returncode == 0
    status = json.loads(kiosk("status", "--config", str(config), "--json").stdout)
    assert status["services"][0]["remaining_today"] == 0


def test_void_and_reprint(config, tmp_path):
    day = today(config)
    assert kiosk("void", "A", day, "1", "--reason", "double", "--config", str(config)).returncode == 0
    result = kiosk("reprint", "A", day, "1", "--config", str(config))
    assert result.returncode == 1 and "void" in result.stderr
    assert kiosk("reprint", "A", day, "2", "--config", str(config)).returncode == 0
    last = decode((tmp_path / "printer.out").read_bytes())[-1]
    assert "CETAK ULANG" in last.text() and last.qr_payloads[0].split(":")[3:6][::2] == ["A", "2"]


@pytest.mark.parametrize("args, message", [
    (("void", "Z", "today", "1"), "service 'Z' is not configured; use one of: A, B"),
    (("void", "A", "23-11-2026", "1"), "date '23-11-2026' is not YYYY-MM-DD"),
    (("reprint", "A", "2020-01-01", "9"), "no ticket A-009 for 2020-01-01"),
])
def test_bad_arguments_say_what_and_change_nothing(config, tmp_path, args, message):
    before = ledger_rows(tmp_path)
    result = kiosk(*args, "--config", str(config))
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert ledger_rows(tmp_path) == before


def ledger_rows(data_dir):
    db = sqlite3.connect(data_dir / "ledger.sqlite3")
    rows = [db.execute(f"SELECT * FROM {t}").fetchall() for t in ("tickets", "events", "quota_overrides")]
    db.close()
    return rows


def test_no_config_is_a_clear_error():
    result = kiosk("status")
    assert result.returncode == 2 and "pass --config FILE or set KIOSK_CONFIG" in result.stderr


def test_demo_runs_without_hardware(tmp_path):
    result = kiosk("demo", "--data-dir", str(tmp_path / "d"), "--press", "ac")
    assert result.returncode == 0, result.stderr
    assert "A-001" in result.stdout.replace(" ", "") and "C-001" in result.stdout.replace(" ", "")
    assert sorted(p.name for p in (tmp_path / "d" / "tickets").iterdir())[:2] == \
        ["doc-0001.png", "doc-0001.txt"]
    assert "ticket issued" in result.stderr and "Traceback" not in result.stderr


def test_reprint_goes_through_the_running_kiosk(tmp_path):
    path = write(tmp_path / "kiosk.toml", process_config(tmp_path, 5))
    running = start_kiosk(path)
    try:
        second = kiosk("run", "--config", str(path), stdin="")
        assert second.returncode == 1 and "a kiosk is already running" in second.stderr
        running.press("a")
        wait_for_tickets(tmp_path, 1)
        result = kiosk("reprint", "A", "today", "1", "--config", str(path))
        assert result.returncode == 0 and "reprinted by the running kiosk" in result.stdout
        receipts = decode((tmp_path / "printer.out").read_bytes())
        assert ["CETAK ULANG" in r.text() for r in receipts] == [False, True]
        assert receipts[0].qr_payloads == receipts[1].qr_payloads
    finally:
        running.close_input()
        assert running.end(30) == 0


def wait_for_tickets(data_dir, n):
    """Look at the ledger of another process until ``n`` tickets are printed (it is a separate process)."""
    def printed():
        rows = ledger_rows(data_dir)[0]
        return len(rows) >= n and all(row[6] == "printed" for row in rows)

    wait_until(printed, 30, what=f"{n} printed tickets", every_s=0.05)


def test_clock_confirm_with_nothing_to_confirm_changes_nothing(config, tmp_path):
    before = ledger_rows(tmp_path)
    result = kiosk("clock", "confirm", "--config", str(config))
    assert result.returncode == 1, result.stdout
    assert "nothing to confirm: the clock is not suspect" in result.stderr and "Traceback" not in result.stderr
    assert ledger_rows(tmp_path) == before
