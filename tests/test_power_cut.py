"""Power cuts: the kiosk runs as a real process and is SIGKILLed at random moments.

The moments fall both in the start-up window (from the process start to its
"ready" (sd_notify READY=1): config validation, the python-escpos cache, the ledger, the
ticket key) and while it issues and prints. One cut in five goes to a fresh
data directory, whose first and second starts are cut: the first start makes
the ledger and the key, the second the python-escpos cache in data_dir/cache.

After every cut the ledger is checked against what reached the printer
device: no number twice, no quota exceeded, every ticket the printer saw is
in the ledger, and SQLite's integrity check passes. And the kiosk must start
again: a start that ends by itself before "ready" is a brick (systemd would
restart it forever). SIGKILL is as abrupt as a process can end; the OS keeps
what was written, as a journaling file system on the Pi does after a cut with
synchronous=FULL commits. What a SIGKILL cannot show (a rename or a new
file's name lost with the power) tests/test_durable.py checks with strace.

The test prints ``SCENARIO {json}`` with its counts for benchmarks/report.py.
"""

import json
import os
import random
import re
import sqlite3
import statistics
import time
from collections import Counter

import pytest
from support.config import process_config, write
from support.kiosk_process import Process, clean_env, kiosk_argv, start_kiosk

from kiosk.signing import verify_payload

CUTS = int(os.environ.get("ANTREAN_TEST_POWER_CUTS", "50"))
# Small enough that the default 50 cuts also fill the whole horizon (full slips are cut too);
# longer runs (the report's 1,000) get room so the kiosk keeps issuing to the end.
QUOTA = 10 if CUTS <= 100 else CUTS // 2
FRESH_EVERY = 10  # of every ten cuts, two go to the first and second start of a fresh data dir
STARTUP_SHARE = 1 / 3  # of the other cuts, the share aimed at the start-up window
READY_TIMEOUT_S = 60
PAYLOAD = re.compile(rb"ANT1:[A-Z0-9_-]+:[A-Z0-9_-]+:[A-Z]:\d{8}:\d+:[A-Z2-7]{16}")
CACHE_DISCARDED = re.compile(rb"python-escpos cache \S+ (cannot be loaded|is not a python-escpos)")


def start_run(config_path, env: dict, keys: str) -> Process:
    """One ``kiosk run`` (not waited for); presses made while it starts are read once it is ready,
    like a citizen's at boot."""
    process = Process(kiosk_argv(config_path), env=env)
    process.press(keys)  # False if it already ended: the caller sees that
    return process


class Bricked(AssertionError):
    """A start ended by itself before ready: the kiosk would not come back."""


class Tally:
    """What the cuts hit, for the assertions and the SCENARIO line."""

    def __init__(self):
        self.counts = Counter()
        self.ready_s: dict[str, float] = {}  # the slowest seen, for the report
        self.ready_times: dict[str, list[float]] = {}

    def window_s(self, kind: str) -> float:
        """How long a start of this kind takes to be ready, as seen so far (cuts aim inside it)."""
        seen = self.ready_times.get(kind) or [t for times in self.ready_times.values() for t in times] or [1.0]
        return statistics.median(seen[-9:])  # a typical start: one slow start on a busy machine must not widen it

    def started(self, start: Process, kind: str, after_cut: bool) -> None:
        self.counts["starts"] += 1
        self.counts["starts_after_cut"] += after_cut
        if start.ready_after_s is not None:
            self.ready_s[kind] = max(self.ready_s.get(kind, 0.0), start.ready_after_s)
            self.ready_times.setdefault(kind, []).append(start.ready_after_s)
            self.counts["ready"] += 1
            self.counts["ready_after_cut"] += after_cut
        self.counts["escpos_cache_discarded"] += any(CACHE_DISCARDED.search(line) for line in start.lines)

    def cut(self, start: Process, kind: str) -> None:
        self.counts["cuts"] += 1
        where = "while_running" if start.ready.is_set() else f"in_startup_{kind}_start"
        self.counts[f"cuts_{where}"] += 1
        self.counts["cuts_in_startup"] += not start.ready.is_set()


class Life:
    """One data directory, started and cut again and again, as one kiosk's SD card."""

    def __init__(self, root, tally: Tally, rng: random.Random):
        root.mkdir()
        self.dir, self.tally, self.rng, self.starts = root, tally, rng, 0
        self.config_path = write(root / "kiosk.toml", process_config(root, QUOTA))
        # Its own user cache, where the first start (no data_dir/cache yet) keeps python-escpos's pickle.
        self.env = clean_env(XDG_CACHE_HOME=str(root / "xdg"))

    def kind(self) -> str:
        return ("first", "second")[self.starts] if self.starts < 2 else "later"

    def cut_once(self, in_startup: bool) -> None:
        kind = self.kind()
        keys = "".join(self.rng.choice("ab") for _ in range(self.rng.randint(1, 8)))
        start = start_run(self.config_path, self.env, keys)
        if in_startup:
            crashed = start.ended.wait(self.rng.uniform(0, self.tally.window_s(kind)))
        else:
            crashed = not start.settle(READY_TIMEOUT_S)
            # The random moment: anywhere from before the first commit to after the last print.
            time.sleep(self.rng.uniform(0, 0.06))
        self._started(start, kind, crashed)
        start.kill()
        self.tally.cut(start, kind)
        check_ledger(self.dir)

    def start_to_ready(self) -> None:
        """The start after the last cut: it must be ready, then stop cleanly."""
        kind = self.kind()
        start = start_run(self.config_path, self.env, "")
        self._started(start, kind, crashed=not start.settle(READY_TIMEOUT_S))
        start.close_input()  # as systemd's stop would: the keyboard source ends on EOF and the kiosk exits
        assert start.end(READY_TIMEOUT_S) == 0, start.log()
        check_ledger(self.dir)

    def _started(self, start: Process, kind: str, crashed: bool) -> None:
        after_cut = self.starts > 0
        self.starts += 1
        if crashed:
            start.kill()  # a hung start is ended here; one that crashed is already gone
            self.tally.started(start, kind, after_cut)
            self.tally.counts["bricks"] += 1
            raise Bricked(f"{self.dir}: start {self.starts} ({kind}) ended before ready:\n{start.log()}")
        self.tally.started(start, kind, after_cut)

    def temporaries_left(self) -> int:
        return sum(1 for p in self.dir.rglob("*.tmp"))


def test_power_cuts_lose_nothing_and_never_brick(tmp_path):
    rng = random.Random(int(os.environ.get("ANTREAN_TEST_SEED", "2026")))
    tally = Tally()
    lives = [Life(tmp_path / "main", tally, rng)]
    started = time.monotonic()
    try:
        while tally.counts["cuts"] < CUTS:
            if tally.counts["cuts"] % FRESH_EVERY == FRESH_EVERY - 2 and CUTS - tally.counts["cuts"] >= 2:
                fresh = Life(tmp_path / f"fresh-{len(lives)}", tally, rng)
                lives.append(fresh)
                fresh.cut_once(in_startup=True)  # the first start: ledger, key, user cache
                fresh.cut_once(in_startup=True)  # the second: python-escpos's cache in data_dir/cache
                fresh.start_to_ready()
            else:
                lives[0].cut_once(in_startup=rng.random() < STARTUP_SHARE)
        lives[0].start_to_ready()
    finally:
        totals = check_ledger(lives[0].dir)
        print_scenario(tally, lives, totals, time.monotonic() - started)
    assert tally.counts["bricks"] == 0
    assert tally.counts["cuts_in_startup"] >= CUTS // 10, tally.counts  # the window was really hit
    assert totals["tickets"] > tally.counts["cuts_while_running"] // 2  # and a kiosk that was really issuing


def print_scenario(tally: Tally, lives: list, totals: dict, wall_s: float) -> None:
    zero = dict.fromkeys(("bricks", "cuts_in_startup", "cuts_while_running", "escpos_cache_discarded"), 0)
    summary = {"scenario": "power_cut", **zero, **tally.counts,
               "data_dirs": len(lives), "main_tickets": totals["tickets"], "main_printed": totals["printed"],
               "main_full_slips": totals["full_slips"], "temporaries_left": sum(x.temporaries_left() for x in lives),
               "slowest_ready_s": {k: round(v, 2) for k, v in sorted(tally.ready_s.items())},
               "wall_s": round(wall_s, 1)}
    print("SCENARIO " + json.dumps(summary, sort_keys=True))


def check_ledger(data_dir) -> dict:
    path = data_dir / "ledger.sqlite3"
    if not path.exists():  # cut before the ledger was made: then nothing may have been printed
        assert printed_tickets(data_dir) == set()
        return {"tickets": 0, "printed": 0, "full_slips": 0}
    db = sqlite3.connect(path)  # read-write: after a cut SQLite may have to recover the WAL, as the next start does
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'tickets'").fetchone()[0] == 0:
            assert printed_tickets(data_dir) == set()  # cut while the schema was being made
            return {"tickets": 0, "printed": 0, "full_slips": 0}
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
        slips = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'horizon_full'").fetchone()[0]
        return {"tickets": len(in_ledger), "printed": len(printed), "full_slips": slips}
    finally:
        db.close()


def printed_tickets(data_dir) -> set:
    """Every complete, genuine ticket code that reached the printer device."""
    path = data_dir / "printer.out"
    if not path.exists() or not PAYLOAD.search(path.read_bytes()):
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
    kiosk = start_kiosk(write(tmp_path / "kiosk.toml", process_config(tmp_path, QUOTA)), timeout_s=60)
    kiosk.press(keys)
    kiosk.close_input()
    assert kiosk.end(60) == 0
    assert check_ledger(tmp_path) == {"tickets": len(keys), "printed": len(keys), "full_slips": 0}
