"""Unclean boots: a power cut leaves no clean-shutdown mark, and the next start notices.

One row per boot, keyed by the kernel's boot id (a fresh random UUID at every
boot). At start the agent calls ``BootLog.start()``; when systemd stops it
(shutdown, reboot, ``systemctl stop``) it calls ``mark_clean_shutdown()``. A
new boot whose predecessor has no mark followed an unclean end: a power cut,
a pulled plug, a hang cured by the power switch. Restarting the agent within
one boot is not a new boot, and it clears the mark again, so a power cut
after such a restart still counts.

Limits, by design: a boot in which the agent never ran is invisible; an agent
killed by systemd after its stop timeout leaves no mark and counts as a power
cut. Times come from the system clock, which on a Pi without an RTC may be
stale until NTP syncs, so ``unclean_30d`` is approximate; ordering uses row
ids, never times.

SQLite in WAL mode with synchronous=FULL, like the ledger: the mark written a
moment before the power goes off must be on the card. No method raises:
``start`` and ``mark_clean_shutdown`` run at start and during shutdown, where
a failing SD card must not stop the agent; failures come back as reasons.
"""

import os
import sqlite3
import threading
import time
from dataclasses import dataclass

from common import db as db_util
from edge_agent.errors import AgentError

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
FILE_NAME = "boots.sqlite3"
WINDOW_S = 30 * 86400
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS boots (
    id                INTEGER PRIMARY KEY,     -- boot order; the clock may be wrong at boot
    boot_id           TEXT    NOT NULL UNIQUE,
    started_at        INTEGER NOT NULL,        -- first agent start in this boot, unix ms
    after_unclean     INTEGER NOT NULL CHECK (after_unclean IN (0, 1)),
    agent_starts      INTEGER NOT NULL DEFAULT 1,
    clean_shutdown_at INTEGER                  -- unix ms of the last clean stop; NULL while running
);
"""


class BootLogError(AgentError):
    """The boot log cannot answer; the message says why and what to check."""


@dataclass(frozen=True)
class BootStart:
    """What ``BootLog.start()`` found. On failure only ``reason`` (and maybe ``boot_id``) is set."""

    boot_id: str | None
    new_boot: bool | None  # False: the agent restarted within this boot
    after_unclean: bool | None  # the boot before this one ended without a clean-shutdown mark
    previous_boot_id: str | None = None
    reason: str | None = None

    @property
    def unclean_event(self) -> bool:
        """Publish an ``unclean_boot`` event now: a new boot after an unclean end (not on a mere restart)."""
        return bool(self.new_boot and self.after_unclean)

    @property
    def unclean_reason(self) -> str:
        """What the ``unclean_boot`` event says (``reason`` is why the boot log could not be used)."""
        return f"boot {self.previous_boot_id} ended without a clean shutdown"


def read_boot_id(root: str = "/") -> str | None:
    try:
        with open(os.path.join(root, BOOT_ID_PATH.lstrip("/")), encoding="ascii") as f:
            return f.read().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class BootLog:
    def __init__(self, data_dir: str, root: str = "/", clock=time.time):
        self.path = os.path.join(data_dir, FILE_NAME)
        self._root = root
        self._clock = clock
        self._lock = threading.Lock()  # the shutdown mark may come from a signal-handling thread
        self._db: sqlite3.Connection | None = None
        self.started: BootStart | None = None

    def start(self, boot_id: str | None = None) -> BootStart:
        """Record this boot (read from /proc unless given); call once at agent start."""
        boot_id = boot_id or read_boot_id(self._root)
        if boot_id is None:
            self.started = BootStart(None, None, None, reason=f"no boot id: {BOOT_ID_PATH} is not readable")
            return self.started
        try:
            with self._lock:
                self._open()
                # IMMEDIATE: two agents started by mistake cannot both see "no row" and both insert.
                with db_util.immediate(self._db) as db:
                    self.started = self._record(db, boot_id)
        except sqlite3.Error as exc:
            self.started = BootStart(boot_id, None, None, reason=f"boot log {self.path}: {exc}; "
                                     "check that the agent data dir exists and is writable")
        return self.started

    def mark_clean_shutdown(self) -> bool:
        """Mark this boot as cleanly stopped (call when systemd stops the agent); True if written."""
        if self._db is None or self.started is None or self.started.reason:
            return False
        try:
            with self._lock, db_util.immediate(self._db) as db:
                db.execute("UPDATE boots SET clean_shutdown_at = ? WHERE boot_id = ?",
                           (_ms(self._clock()), self.started.boot_id))
            return True
        except sqlite3.Error:
            return False

    def summary(self) -> dict:
        """Counts for the health payload; raises BootLogError if the log could not be used."""
        if self.started is None:
            raise BootLogError("boot log not started; the agent calls BootLog.start() when it starts")
        if self.started.reason:
            raise BootLogError(self.started.reason)
        since = _ms(self._clock() - WINDOW_S)
        try:
            with self._lock:
                total, recent, recorded = self._db.execute(
                    "SELECT TOTAL(after_unclean), TOTAL(after_unclean AND started_at >= ?), COUNT(*) FROM boots",
                    (since,)).fetchone()
                starts = self._db.execute("SELECT agent_starts FROM boots WHERE boot_id = ?",
                                          (self.started.boot_id,)).fetchone()
        except sqlite3.Error as exc:
            raise BootLogError(f"boot log {self.path}: {exc}") from None
        return {"after_unclean": self.started.after_unclean, "unclean_total": int(total),
                "unclean_30d": int(recent), "boots_recorded": recorded,
                "agent_starts_this_boot": starts[0] if starts else None}

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # ------------------------------------------------------------ plumbing

    def _record(self, db, boot_id: str) -> BootStart:
        row = db.execute("SELECT after_unclean FROM boots WHERE boot_id = ?", (boot_id,)).fetchone()
        if row is not None:
            # An agent restart within this boot. Clear the mark a previous stop left, or a
            # power cut from now on would pass for a clean shutdown.
            db.execute("UPDATE boots SET agent_starts = agent_starts + 1, clean_shutdown_at = NULL "
                       "WHERE boot_id = ?", (boot_id,))
            return BootStart(boot_id, new_boot=False, after_unclean=bool(row[0]))
        last = db.execute("SELECT boot_id, clean_shutdown_at FROM boots ORDER BY id DESC LIMIT 1").fetchone()
        unclean = last is not None and last[1] is None
        db.execute("INSERT INTO boots (boot_id, started_at, after_unclean) VALUES (?, ?, ?)",
                   (boot_id, _ms(self._clock()), int(unclean)))
        return BootStart(boot_id, new_boot=True, after_unclean=unclean,
                         previous_boot_id=last[0] if last else None)

    def _open(self) -> None:
        if self._db is not None:
            return
        db = db_util.connect(self.path, "FULL", timeout=2.0)  # the shutdown mark must survive the power going off
        try:
            db.executescript(SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
        except sqlite3.Error:
            db.close()
            raise
        self._db = db
