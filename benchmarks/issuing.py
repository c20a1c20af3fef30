"""Issuing overhead: button press to the FIRST byte handed to the printer link.

That span holds everything a citizen waits for before the printer moves:
the press guard, the printer status check, the durable SQLite commit of the
ticket (WAL, synchronous=FULL, so an fsync), the log line and rendering the
ESC/POS bytes. It is measured in-process on a real ledger file: the time
``Kiosk.handle_press`` is called versus the time the printer backend's
``_send`` is called (a FilePrinter writing to a file in the temp dir).

Two ledgers: a fresh one, and one holding about a million tickets of
history (five years of a busy office) so that index depth and file size
show up if they matter. A fake system clock walks through service days so
that every press issues a real ticket and the booking horizon never fills.

    python benchmarks/issuing.py            # 2,000 presses, 1,000,000 tickets of history
    python benchmarks/issuing.py --quick    # 200 presses, 50,000 tickets of history
"""

import datetime as dt
import io
import json
import logging
import math
import os
import random
import sqlite3
import sys
import tempfile
import time

from _common import (
    QUOTA,
    SERVICES,
    arguments,
    config_text,
    machine,
    mib,
    ms,
    percentile,
    say,
    service_days,
    table,
    verdict,
)
from support.clock import FakeSystemClock

from common.log import setup_logging
from kiosk import config as kconfig
from kiosk.app import build_kiosk
from kiosk.buttons import ButtonSpec
from kiosk.buttons.keyboard import KeyboardButtons
from kiosk.ledger import Ledger, to_ms
from kiosk.printer.file import FilePrinter

TARGET_P99_S = 0.010
TARGET_HISTORY_RATIO = 1.2
START_DAY = dt.date(2026, 11, 23)  # a Monday; history lies before it
HISTORY_PER_DAY = 200  # tickets per service per day in the history (a busier config than today's)
WARMUP_PRESSES = 20


class StampingPrinter(FilePrinter):
    """A real file printer that notes when the first byte of a send is handed to the link.

    Right after the time stamp it also notes the ledger file's mtime: in WAL mode the main
    database file is written only by a checkpoint, so a changed mtime means the ticket's
    commit ran a WAL checkpoint before the first byte.
    """

    def __init__(self, path: str, ledger_path: str):
        super().__init__(path, create=True)
        self.ledger_path = ledger_path
        self.first_byte_at = None
        self.ledger_mtime = None

    def _send(self, data: bytes) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()
            self.ledger_mtime = os.stat(self.ledger_path).st_mtime_ns
        super()._send(data)


# ---------------------------------------------------------------- disk

def measure_fsync(directory: str, count: int) -> dict:
    """os.fsync / os.fdatasync after a small append, as SQLite's WAL commit does."""
    path = os.path.join(directory, "fsync.probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    out = {"fsync": [], "fdatasync": []}
    try:
        for _ in range(count):
            for name, sync in (("fsync", os.fsync), ("fdatasync", os.fdatasync)):
                os.write(fd, b"x" * 100)
                t0 = time.perf_counter()
                sync(fd)
                out[name].append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    return out


# ---------------------------------------------------------------- history

def fill_history(path: str, office_id: str, tz, tickets: int, end_day: dt.date = START_DAY) -> dict:
    """Write ~``tickets`` tickets over the service days before ``end_day`` into the real schema, fast.

    The ledger is created by :class:`Ledger` first, so the tables and indexes are
    the kiosk's own. Events are written only for the last 90 days: older ones
    would be pruned by the kiosk at start anyway.
    """
    Ledger(path, office_id, tz).close()  # the real schema
    codes = [code for code, *_ in SERVICES]
    n_days = max(1, math.ceil(tickets / (len(codes) * HISTORY_PER_DAY)))
    days = sorted(service_days(end_day - dt.timedelta(days=1), -n_days))
    event_cutoff = end_day - dt.timedelta(days=90)
    rng = random.Random(2026)
    counts = {"tickets": 0, "events": 0}

    def ticket_rows():
        for day in days:
            opens = to_ms(dt.datetime.combine(day, dt.time(8, 0), tz))
            iso = day.isoformat()
            for number in range(1, HISTORY_PER_DAY + 1):
                for k, code in enumerate(codes):
                    roll = rng.random()
                    status, attempts = (("void", 1) if roll < 0.002 else ("reprinted", 2) if roll < 0.003
                                        else ("print_failed", 1) if roll < 0.0035 else ("printed", 1))
                    counts["tickets"] += 1
                    yield (office_id, code, iso, number, opens + (number * 4 + k) * 27_000, status, attempts)

    def event_rows():
        for day in days:
            if day < event_cutoff:
                continue
            opens = to_ms(dt.datetime.combine(day, dt.time(8, 0), tz))
            iso = day.isoformat()
            for number in range(1, HISTORY_PER_DAY + 1):
                for k, code in enumerate(codes):
                    at = opens + (number * 4 + k) * 27_000
                    data = {"number": number, "quota": HISTORY_PER_DAY, "service": code, "service_day": iso}
                    counts["events"] += 1
                    yield (at, "ticket_issued", json.dumps(data, sort_keys=True))
                    if number == HISTORY_PER_DAY:
                        counts["events"] += 1
                        yield (at, "day_full", json.dumps({"quota": HISTORY_PER_DAY, "service": code,
                                                           "service_day": iso}, sort_keys=True))

    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = OFF")  # generating history, not issuing: speed over safety
        db.execute("PRAGMA cache_size = -65536")
        db.execute("BEGIN")
        db.executemany("INSERT INTO tickets (office_id, service, service_day, number, issued_at, status, "
                       "print_attempts) VALUES (?, ?, ?, ?, ?, ?, ?)", ticket_rows())
        db.executemany("INSERT INTO events (at, kind, data) VALUES (?, ?, ?)", event_rows())
        set_at = to_ms(dt.datetime.combine(days[0], dt.time(7, 0), tz))
        db.executemany("INSERT INTO quota_overrides VALUES (?, ?, ?, ?, ?)",
                       ((office_id, code, day.isoformat(), HISTORY_PER_DAY, set_at)
                        for day in days for code in codes))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # five years later it is all in the main file
    finally:
        db.close()
    # ... and on the disk: without this the kiosk's first WAL checkpoint would pay for
    # flushing ~100 MB of history out of the page cache (a 60 ms outlier seen in testing).
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    counts["days"] = len(days)
    counts["first_day"], counts["last_day"] = days[0], days[-1]
    return counts


# ---------------------------------------------------------------- presses

class PressRig:
    """A kiosk built on ``data_dir``'s ledger, pressed one button at a time; each press timed.

    The benchmark presses two rigs (empty and history ledger) in turns, so both see the same
    machine: a busy neighbour (another test run, a cron job) slows both alike instead of
    only whichever ledger happened to be measured at that moment.
    """

    def __init__(self, data_dir: str, presses: int):
        self.cfg = kconfig.loads(config_text(data_dir), source="benchmark")
        self.day_list = service_days(START_DAY, math.ceil((presses + WARMUP_PRESSES) / (QUOTA * len(SERVICES))) + 1)
        self.per_day = QUOTA * len(SERVICES)
        self.system = FakeSystemClock(self.moment(0))
        t0 = time.perf_counter()
        self.ledger_path = os.path.join(data_dir, "ledger.sqlite3")
        self.printer = StampingPrinter(os.path.join(data_dir, "printer.out"), self.ledger_path)
        buttons = KeyboardButtons([ButtonSpec(c, b, led) for c, _, b, led in SERVICES], stream=io.StringIO())
        self.kiosk = build_kiosk(self.cfg, printer=self.printer, buttons=buttons, system_clock=self.system)
        self.kiosk.printer.open()
        self.kiosk._report_unconfirmed()
        self.kiosk.tick()  # what Kiosk.start() does, without the worker thread and the stdin reader
        self.build_s = time.perf_counter() - t0
        self.parts = {"issue": [], "render": [], "owed": []}
        self._time("issue", self.kiosk.ledger, "issue_ticket")
        self._time("owed", self.kiosk.ledger, "owed_prints")
        self._time("render", self.kiosk, "render")
        self.codes = [code for code, *_ in SERVICES]
        self.latencies, self.busy, self.checkpointed, self.checkpoints = [], [], [], 0

    def moment(self, i: int) -> dt.datetime:
        """Press ``i``'s time: a day's presses spread over 08:00-14:00, then the next service day."""
        return dt.datetime.combine(self.day_list[i // self.per_day], dt.time(8, 0), self.cfg.tz) + \
            dt.timedelta(seconds=(i % self.per_day) * 6 * 3600 / self.per_day)

    def _time(self, part: str, owner, name: str) -> None:
        real, spent = getattr(owner, name), self.parts[part]

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                spent.append(time.perf_counter() - t)

        setattr(owner, name, timed)

    def press(self, i: int) -> None:
        self.system.set(self.moment(i))
        self.printer.first_byte_at = None
        mtime_before = os.stat(self.ledger_path).st_mtime_ns
        t_press = time.perf_counter()
        outcome = self.kiosk.handle_press(self.codes[i % len(self.codes)])
        t_done = time.perf_counter()
        self.checkpointed.append(self.printer.ledger_mtime != mtime_before)
        self.checkpoints += os.stat(self.ledger_path).st_mtime_ns != mtime_before
        if outcome.kind != "ticket" or not outcome.printed or self.printer.first_byte_at is None:
            raise SystemExit(f"press {i} did not print a ticket: {outcome}")
        self.latencies.append(self.printer.first_byte_at - t_press)
        self.busy.append(t_done - t_press)

    def close(self) -> dict:
        self.kiosk.stop()
        self.kiosk.ledger.close()
        n, presses = WARMUP_PRESSES, len(self.latencies) - WARMUP_PRESSES
        return {"first": self.latencies[0], "lat": self.latencies[n:], "busy": self.busy[n:],
                "issue": self.parts["issue"][n:], "owed": self.parts["owed"][n:],
                "ckpt": self.checkpointed[n:], "ckpt_any": self.checkpoints, "render": self.parts["render"][n:],
                "build_s": self.build_s, "last_day": self.day_list[(n + presses - 1) // self.per_day]}


def run_interleaved(dirs: list[str], presses: int, log_stream) -> list[dict]:
    """Press the kiosks on ``dirs`` in turns (the order flips every press); their results."""
    setup_logging("info", "json", stream=log_stream)  # the kiosk logs a JSON line per ticket
    rigs = [PressRig(d, presses) for d in dirs]
    try:
        for i in range(WARMUP_PRESSES + presses):
            for rig in (rigs if i % 2 == 0 else rigs[::-1]):
                rig.press(i)
    finally:
        results = [rig.close() for rig in rigs]
    return results


def file_size(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    parser = arguments(__doc__, "a fast smoke run (200 presses, 50k history)")
    parser.add_argument("--presses", type=int, help="measured presses per ledger (default 2000)")
    parser.add_argument("--history", type=int, help="tickets of history in the second ledger (default 1,000,000)")
    args = parser.parse_args(argv)
    presses = args.presses or (200 if args.quick else 2000)
    history = args.history or (50_000 if args.quick else 1_000_000)

    with tempfile.TemporaryDirectory(prefix="antrean-bench-issuing-") as tmp:
        say(f"measuring fsync in {tmp} ...")
        sync = measure_fsync(tmp, 50 if args.quick else 300)

        empty_dir, hist_dir = os.path.join(tmp, "empty"), os.path.join(tmp, "history")
        os.makedirs(empty_dir)
        os.makedirs(hist_dir)
        cfg = kconfig.loads(config_text(hist_dir), source="benchmark")
        ledger_path = os.path.join(hist_dir, "ledger.sqlite3")
        say(f"writing {history:,} tickets of history ...")
        t0 = time.perf_counter()
        made = fill_history(ledger_path, cfg.office_id, cfg.tz, history)
        fill_s = time.perf_counter() - t0
        size_before = file_size(ledger_path)
        say(f"  {made['tickets']:,} tickets, {made['events']:,} events in {fill_s:.1f} s, {mib(size_before)}")
        say(f"empty and history ledger, in turns: {presses} presses each ...")
        with open(os.path.join(tmp, "kiosk.log"), "w") as log_stream:
            empty, hist = run_interleaved([empty_dir, hist_dir], presses, log_stream)
        size_after = file_size(ledger_path)
        logging.getLogger().handlers[:] = []

    p99_empty, p99_hist = percentile(empty["lat"], 99), percentile(hist["lat"], 99)
    ratio = p99_hist / p99_empty
    print("# Issuing overhead: press to first printer byte (incl. durable SQLite commit)\n")
    print(f"Machine: {machine()}")
    print(f"Config: {len(SERVICES)} services x quota {QUOTA}/day, booking horizon 10, 58 mm, "
          f"file printer; {presses} measured presses per ledger after {WARMUP_PRESSES} warm-up presses, "
          f"the two ledgers' kiosks pressed in turns; fake clock walks {START_DAY} .. {empty['last_day']} "
          "(every press a real ticket)\n")
    rows = []
    for name, r, tickets_before, target, ok in (
            ("empty", empty, 0, f"p99 <= {ms(TARGET_P99_S)}", p99_empty <= TARGET_P99_S),
            (f"{made['tickets']:,} history", hist, made["tickets"],
             f"p99 <= {TARGET_HISTORY_RATIO}x empty = {ms(TARGET_HISTORY_RATIO * p99_empty)}",
             ratio <= TARGET_HISTORY_RATIO)):
        lat = r["lat"]
        rows.append([name, f"{tickets_before:,}", len(lat), ms(percentile(lat, 50)), ms(percentile(lat, 99)),
                     ms(max(lat)), target, verdict(ok)])
    print(table(["ledger", "tickets before", "presses", "p50", "p99", "max", "target", "result"], rows))
    print(f"\nhistory p99 / empty p99 = {ratio:.2f}x\n")

    print("## Where the time goes (same presses)\n")
    rows = []
    for name, r in (("empty", empty), ("history", hist)):
        for part, values in (("owed_prints (reprints owed, asked first)", r["owed"]),
                             ("issue_ticket (SQL + COMMIT/fsync)", r["issue"]),
                             ("render (ESC/POS bytes)", r["render"]),
                             ("press -> first byte", r["lat"]),
                             ("whole press (to mark_printed + LEDs)", r["busy"])):
            rows.append([name, part, ms(percentile(values, 50)), ms(percentile(values, 99)), ms(max(values))])
        rows.append([name, "first press after build (not in stats)", ms(r["first"]), "", ""])
        rows.append([name, "build_kiosk + open + tick", ms(r["build_s"]), "", ""])
    print(table(["ledger", "part", "p50", "p99", "max"], rows))

    print("\n## WAL checkpoints (SQLite auto-checkpoint at 1000 pages) inside press -> first byte\n")
    rows = []
    for name, r in (("empty", empty), ("history", hist)):
        with_ck = [t for t, c in zip(r["lat"], r["ckpt"], strict=True) if c]
        without = [t for t, c in zip(r["lat"], r["ckpt"], strict=True) if not c]
        rows.append([name, f"{len(with_ck)} of {len(r['lat'])} ({len(with_ck) / len(r['lat']):.1%})",
                     ms(percentile(with_ck, 50)) if with_ck else "-", ms(max(with_ck)) if with_ck else "-",
                     ms(percentile(without, 50)), r["ckpt_any"]])
    print(table(["ledger", "presses whose ticket commit checkpointed", "their p50", "their max",
                 "other presses p50", "checkpoints in all (incl. warm-up, mark_printed)"], rows))

    print("\n## Disk (the temp dir's file system; a Pi's SD card is slower)\n")
    rows = [[name, len(values), ms(percentile(values, 50)), ms(percentile(values, 99)), ms(max(values))]
            for name, values in sync.items()]
    print(table(["call after a 100-byte append", "samples", "p50", "p99", "max"], rows))
    share = percentile(sync["fdatasync"], 50) / percentile(empty["issue"], 50)
    print(f"\nSQLite commits the WAL with fdatasync (one per commit, synchronous=FULL): one "
          f"fdatasync p50 is {share:.0%} of the empty-ledger issue_ticket p50.\n")
    print(table(["history ledger", "value"], [
        ["tickets / events / service days", f"{made['tickets']:,} / {made['events']:,} / {made['days']:,} "
                                            f"({made['first_day']} .. {made['last_day']})"],
        ["ledger file (db + wal) before presses", mib(size_before)],
        ["ledger file (db + wal) after presses", mib(size_after)],
        ["bytes per ticket of history", f"{size_before / made['tickets']:.0f} B"],
        ["time to write the history", f"{fill_s:.1f} s"],
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
