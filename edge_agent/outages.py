"""The outage log on disk: when each target was down or in maintenance, and the likely cause.

SQLite in WAL mode, one row per period. A row opens when a target goes
down (or into maintenance) and closes when it is seen otherwise. An
outage still open when the agent stops stays open across the restart and
closes when the target is next seen up, so its duration is the real one.
Rows older than ``keep_days`` (400: a year and a month, for yearly
reports) are pruned, and at most ``max_rows`` are kept, so a flapping
link cannot fill the SD card.

``synchronous=NORMAL``: a power cut may lose the last transition, which
the next rounds see again; full fsyncs on every round would wear the card
for nothing.
"""

import enum
import sqlite3
import threading
import time

from common import db as db_util
from edge_agent.network import DEGRADED, DOWN, MAINTENANCE, UP, iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS periods (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('outage', 'maintenance')),
    target TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    cause TEXT,
    reason TEXT,
    end_reason TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS periods_one_open ON periods (kind, target) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS periods_started ON periods (started_at);
"""
# The cause is judged from all targets' states; when targets reach "down" a
# round or two apart (the gateway's ping fails a round after the central
# server's connect did) the first judgement is premature. Outages opened
# this recently take the newer cause.
CAUSE_SETTLE_S = 60.0
PRUNE_EVERY_S = 86400.0


class PeriodKind(enum.StrEnum):
    """What a row of the log is (the ``kind`` column and ``edge-agent outages``)."""

    OUTAGE = "outage"
    MAINTENANCE = "maintenance"


class OutageLog:
    def __init__(self, path, keep_days: float = 400, max_rows: int = 100_000, clock=time.time):
        self.path = str(path)
        self.keep_days = keep_days
        self.max_rows = max_rows
        self._clock = clock
        self._lock = threading.Lock()
        self._db = db_util.connect(self.path, "NORMAL")
        self._db.row_factory = sqlite3.Row
        self._db.executescript(SCHEMA)
        self._pruned_at = None
        self.prune()

    def record(self, transitions, cause: str | None = None) -> dict[str, float]:
        """Open and close periods for ``transitions`` (oldest first); ``cause`` is the office's likely cause.

        Returns target -> when its outage started, for each outage these transitions opened, went on
        with or closed. An outage open from before a restart goes on ("unknown -> down") or closes
        ("unknown -> up") with its real start, and must be said to end like any other."""
        transitions = sorted(transitions, key=lambda t: t.at)
        if not transitions:
            return {}
        starts = {}
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for t in transitions:
                starts.update(self._apply(t, cause))
            if cause is not None:
                self._db.execute(
                    "UPDATE periods SET cause = ? WHERE kind = 'outage' AND ended_at IS NULL AND started_at >= ?",
                    (cause, transitions[-1].at - CAUSE_SETTLE_S))
        if self._pruned_at is None or self._clock() - self._pruned_at >= PRUNE_EVERY_S:
            self.prune()
        return starts

    def record_round(self, report) -> dict[str, float]:
        """``record`` for a :class:`edge_agent.network.RoundReport`, with its verdict's cause."""
        cause = report.verdict.get("cause")
        return self.record(report.transitions, cause["text"] if cause else None)

    def open_periods(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM periods WHERE ended_at IS NULL ORDER BY started_at").fetchall()
        return [self._row(r) for r in rows]

    def history(self, limit: int = 50, target: str | None = None) -> list[dict]:
        """The latest ``limit`` periods, newest first, open ones included."""
        sql = "SELECT * FROM periods" + (" WHERE target = ?" if target else "")
        args = (target,) if target else ()
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY started_at DESC, id DESC LIMIT ?", args + (limit,)).fetchall()
        return [self._row(r) for r in rows]

    def prune(self) -> int:
        """Delete closed periods older than ``keep_days`` and the oldest beyond ``max_rows``; how many went."""
        now = self._clock()
        with self._lock, self._db:
            gone = self._db.execute("DELETE FROM periods WHERE ended_at IS NOT NULL AND ended_at < ?",
                                    (now - self.keep_days * 86400,)).rowcount
            gone += self._db.execute(
                "DELETE FROM periods WHERE id IN (SELECT id FROM periods WHERE ended_at IS NOT NULL "
                "ORDER BY started_at DESC LIMIT -1 OFFSET ?)", (self.max_rows,)).rowcount
        self._pruned_at = now
        return gone

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _apply(self, t, cause) -> dict[str, float]:
        """The transition into the log; {target: start} of the outage it opened, went on with or closed."""
        started = None
        if t.to_state in (UP, DEGRADED, DOWN):
            self._close(PeriodKind.MAINTENANCE, t)
        if t.to_state in (UP, DEGRADED, MAINTENANCE):
            started = self._close(PeriodKind.OUTAGE, t)
        if t.to_state in (DOWN, MAINTENANCE):
            kind = PeriodKind.OUTAGE if t.to_state == DOWN else PeriodKind.MAINTENANCE
            # OR IGNORE: an outage open from before a restart keeps its start.
            self._db.execute("INSERT OR IGNORE INTO periods (kind, target, started_at, cause, reason) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (kind.value, t.target, t.at, cause if kind is PeriodKind.OUTAGE else None, t.reason))
        if t.to_state == DOWN:
            started = self._db.execute("SELECT started_at FROM periods WHERE kind = 'outage' AND target = ? "
                                       "AND ended_at IS NULL", (t.target,)).fetchone()[0]
        return {} if started is None else {t.target: started}

    def _close(self, kind: PeriodKind, t) -> float | None:
        """Close the open period of ``kind`` for the target; when it started, or None if none was open."""
        row = self._db.execute("UPDATE periods SET ended_at = ?, end_reason = ? "
                               "WHERE kind = ? AND target = ? AND ended_at IS NULL RETURNING started_at",
                               (t.at, f"{t.to_state}: {t.reason}", kind.value, t.target)).fetchone()
        return None if row is None else row[0]

    def _row(self, r) -> dict:
        end = r["ended_at"]
        return {"kind": PeriodKind(r["kind"]), "target": r["target"], "start": iso(r["started_at"]), "end": iso(end),
                "open": end is None, "duration_s": round((end if end is not None else self._clock())
                                                         - r["started_at"], 1),
                "cause": r["cause"], "reason": r["reason"], "end_reason": r["end_reason"]}
