"""Power cuts: the kiosk runs as a real process and is SIGKILLed at random moments.

After every cut the ledger is checked against what reached the printer
device: no number twice, no quota exceeded, every ticket the printer saw is
in the ledger, and SQLite's integrity check passes. SIGKILL is as abrupt as
a process can end; the OS keeps what was written, as a journaling file
system on the Pi does after a cut with synchronous=FULL commits.
"""

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from kiosk.signing import verify_payload

CUTS = int(os.environ.get("ANTREAN_TEST_POWER_CUTS", "50"))
# Small enough that the default 50 cuts also fill the whole horizon (full slips are cut too);
# longer runs (the report's 1,000) get room so the kiosk keeps issuing to the end.
QUOTA = max(12, CUTS // 2)
CONFIG = """
id = "kiosk-1"
data_dir = "{data_dir}"
[office]
id = "serang-kota"
name = "Disdukcapil Kota Serang"
[calendar]
open_weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
opens_at = "00:00"
last_ticket_at = "23:59"
closes_at = "23:59"
booking_horizon_days = 4
[[services]]
code = "A"
name = "Perekaman e-KTP"
daily_quota = {quota}
[[services]]
code = "B"
name = "Kartu Keluarga"
daily_quota = {quota}
[printer]
backend = "file"
path = "{data_dir}/printer.out"
create = true
[buttons]
backend = "keyboard"
cooldown_ms = 0
"""
PAYLOAD = re.compile(rb"ANT1:[A-Z0-9_-]+:[A-Z0-9_-]+:[A-Z]:\d{8}:\d+:[A-Z2-7]{16}")


def start_kiosk(config_path):
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(config_path)],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    for line in proc.stderr:  # wait for the ready line: an event, not a sleep
        if b'"msg": "ready"' in line:
            return proc
    raise AssertionError(f"kiosk exited before ready, status {proc.wait()}")


def test_power_cuts_lose_nothing_and_never_duplicate(tmp_path):
    config_path = tmp_path / "kiosk.toml"
    config_path.write_text(CONFIG.format(data_dir=tmp_path, quota=QUOTA))
    rng = random.Random(int(os.environ.get("ANTREAN_TEST_SEED", "2026")))
    for cut in range(CUTS):
        proc = start_kiosk(config_path)
        proc.stdin.write(("".join(rng.choice("ab") for _ in range(rng.randint(1, 8))) + "\n").encode())
        proc.stdin.flush()
        # The random moment of the cut: anywhere from before the first commit to after the last print.
        time.sleep(rng.uniform(0, 0.06))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        proc.stdin.close()
        check_ledger(tmp_path)
    totals = check_ledger(tmp_path)
    assert totals["tickets"] > CUTS  # the cuts hit a kiosk that was really issuing


def check_ledger(data_dir) -> dict:
    db = sqlite3.connect(data_dir / "ledger.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        dupes = db.execute("SELECT service, service_day, number, COUNT(*) FROM tickets "
                           "GROUP BY 1, 2, 3 HAVING COUNT(*) > 1").fetchall()
        assert dupes == []
        per_day = db.execute("SELECT service, service_day, COUNT(*), MAX(number) FROM tickets "
                             "GROUP BY 1, 2").fetchall()
        for service, day, count, highest in per_day:
            assert count == highest <= QUOTA, (service, day, count, highest)
        in_ledger = set(db.execute("SELECT service, service_day, number FROM tickets").fetchall())
        printed = printed_tickets(data_dir)
        assert printed <= in_ledger, printed - in_ledger
        return {"tickets": len(in_ledger), "printed": len(printed)}
    finally:
        db.close()


def printed_tickets(data_dir) -> set:
    """Every complete, genuine ticket code that reached the printer device."""
    path = data_dir / "printer.out"
    if not path.exists():
        return set()
    key = (data_dir / "ticket.key").read_bytes()
    seen = []
    for match in PAYLOAD.finditer(path.read_bytes()):
        t = verify_payload(key, match.group().decode())
        seen.append((t["service"], t["service_day"].isoformat(), t["number"]))
    assert len(seen) == len(set(seen)), "a ticket reached the printer twice"
    return set(seen)


@pytest.mark.parametrize("keys", ["ab" * 4])
def test_clean_run_prints_every_ticket_once(tmp_path, keys):
    """The control: without cuts, every press is one ticket in the ledger and on paper."""
    config_path = tmp_path / "kiosk.toml"
    config_path.write_text(CONFIG.format(data_dir=tmp_path, quota=QUOTA))
    proc = start_kiosk(config_path)
    proc.communicate((keys + "\n").encode(), timeout=60)
    assert proc.returncode == 0
    assert check_ledger(tmp_path) == {"tickets": len(keys), "printed": len(keys)}
