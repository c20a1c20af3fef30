"""Issuing stays flat with history: what a press asks the ledger reads only today's and later rows.

Work is counted in SQLite virtual-machine steps (a progress handler called at
every step), not in time: the count does not depend on the machine or its load.
benchmarks/issuing.py measures the time on a million-ticket ledger.
"""

import datetime as dt
import sqlite3

from support import JAKARTA, at

from kiosk.config import Service
from kiosk.ledger import Ledger, to_ms

TODAY = dt.date(2026, 11, 23)
SERVICE = Service(code="A", name="Perekaman e-KTP", daily_quota=500, button=None, led=None, needs_targets=())


def vm_steps(ledger: Ledger, call) -> tuple[int, object]:
    steps = 0

    def step():
        nonlocal steps
        steps += 1
        return 0

    ledger._db.set_progress_handler(step, 1)
    try:
        result = call()
    finally:
        ledger._db.set_progress_handler(None, 1)
    return steps, result


def ledger_with_history(path, failed_per_day: int, days: int) -> Ledger:
    """A ledger whose past days hold printed tickets and ``failed_per_day`` failed prints each,
    as years of paper running out leave them (never reprinted: the day has passed)."""
    Ledger(str(path), "serang-kota", JAKARTA).close()
    db = sqlite3.connect(path)
    rows = []
    for back in range(1, days + 1):
        day = TODAY - dt.timedelta(days=back)
        stamp = to_ms(dt.datetime.combine(day, dt.time(9), JAKARTA))
        for number in range(1, 3 * failed_per_day + 1):
            status = "print_failed" if number <= failed_per_day else "printed"
            rows.append(("serang-kota", "A", day.isoformat(), number, stamp + number, status))
    db.executemany("INSERT INTO tickets (office_id, service, service_day, number, issued_at, status) "
                   "VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    ledger = Ledger(str(path), "serang-kota", JAKARTA)
    # Today: one failed print and one staff reprint request, so the owed list has work to do.
    failed = ledger.issue_ticket(SERVICE, [TODAY], at("2026-11-23 08:00"))
    ledger.mark_print_failed(failed.id, "paper out", at("2026-11-23 08:00"))
    asked = ledger.issue_ticket(SERVICE, [TODAY], at("2026-11-23 08:01"))
    ledger.mark_printed(asked.id)
    ledger.request_reprint("A", TODAY, asked.number, at("2026-11-23 08:02"))
    return ledger


def test_owed_prints_read_only_today_and_later(tmp_path):
    small = ledger_with_history(tmp_path / "small.sqlite3", failed_per_day=2, days=10)
    big = ledger_with_history(tmp_path / "big.sqlite3", failed_per_day=20, days=500)  # 10,000 past failures
    small_steps, small_owed = vm_steps(small, lambda: small.owed_prints(TODAY))
    big_steps, big_owed = vm_steps(big, lambda: big.owed_prints(TODAY))
    assert [(t.service_day, t.number, t.status) for t in big_owed] == \
        [(TODAY, 1, "print_failed"), (TODAY, 2, "printed")] == \
        [(t.service_day, t.number, t.status) for t in small_owed]
    assert big_steps <= 1.2 * small_steps, (small_steps, big_steps)


def test_a_ledger_made_before_the_index_gets_it_at_start(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    ledger_with_history(path, failed_per_day=20, days=50).close()
    db = sqlite3.connect(path)
    db.execute("DROP INDEX tickets_print_failed")  # as a kiosk of the previous release left it
    db.commit()
    db.close()
    reopened = Ledger(str(path), "serang-kota", JAKARTA)
    indexes = [r[0] for r in reopened._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    assert "tickets_print_failed" in indexes
    assert reopened._db.execute("PRAGMA user_version").fetchone()[0] == 3  # older kiosks still open it
    assert [t.number for t in reopened.owed_prints(TODAY)] == [1, 2]


def test_readers_get_the_owed_list_too(tmp_path):
    """The agent and ``kiosk status`` read the same list from a read-only connection."""
    ledger_with_history(tmp_path / "ledger.sqlite3", failed_per_day=2, days=3).close()
    reader = Ledger(str(tmp_path / "ledger.sqlite3"), "serang-kota", JAKARTA, readonly=True)
    assert [t.number for t in reader.owed_prints(TODAY)] == [1, 2]
