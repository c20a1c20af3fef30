"""The disk outbox: every message the agent publishes waits here until the broker acknowledges it.

SQLite in WAL mode with ``synchronous=FULL``, like the ledger: ``put``
returns only after the commit, so a message survives a restart or a power
cut at any instant. The MQTT link deletes a row only when the broker's
PUBACK for it arrives; paho's in-memory queue is never trusted.

The outbox is bounded in bytes (topic plus JSON body; SQLite's own overhead
comes on top, about a third more, and a WAL of a quarter of the bound, at
least 64 KB). When a put would go over the bound the
oldest *samples* (periodic readings that the next one replaces) are
dropped first. Events and state changes are never dropped: if only they
remain, they are kept and ``over_budget`` says so, because losing an
outage report silently is worse than using more of the SD card.
"""

import contextlib
import json
import logging
import sqlite3
import threading
from dataclasses import dataclass

from common import db as db_util
from edge_agent.errors import AgentError
from edge_agent.schema import OutboxKind

log = logging.getLogger("edge_agent.outbox")

KINDS = tuple(OutboxKind)
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: an acked id is never reused
    topic   TEXT    NOT NULL,
    body    TEXT    NOT NULL,                   -- JSON object, enveloped
    qos     INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
    retain  INTEGER NOT NULL CHECK (retain IN (0, 1)),
    kind    TEXT    NOT NULL CHECK (kind IN ('event', 'change', 'sample')),
    session TEXT,                               -- the connection it was made during, if any
    size    INTEGER NOT NULL                    -- bytes of topic + body, counted against max_bytes
);
CREATE INDEX IF NOT EXISTS outbox_samples ON outbox (id) WHERE kind = 'sample';
CREATE TABLE IF NOT EXISTS outbox_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO outbox_meta VALUES ('dropped', 0);
"""
# Samples are deleted in batches of this many rows while making room.
DROP_BATCH = 100
# Below this the outbox could not hold one ordinary message (edge_agent.config checks it too).
MIN_BYTES = 1024
# SQLite checkpoints its WAL every 1000 pages (4 MB) and keeps the file that size for reuse: more
# than a small budget. The WAL is checkpointed and cut back at this share of max_bytes instead.
WAL_SHARE = 4
WAL_MIN_PAGES, WAL_MAX_PAGES = 16, 1000  # 1000: SQLite's default, for large budgets


@dataclass(frozen=True)
class Item:
    """One waiting message, as ``pending`` returns it."""

    id: int
    topic: str
    body: dict
    qos: int
    retain: bool
    kind: OutboxKind
    session: str | None


class Outbox:
    def __init__(self, path: str, max_bytes: int = 5_000_000):
        if not isinstance(max_bytes, int) or max_bytes < MIN_BYTES:
            raise ValueError(f"max_bytes {max_bytes!r} is too small; give at least {MIN_BYTES} (default 5_000_000)")
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = _connect(path)
        self._db.executescript(SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
        _bound_wal(self._db, max_bytes)
        self._bytes, self._count = self._db.execute("SELECT COALESCE(SUM(size), 0), COUNT(*) FROM outbox").fetchone()
        self._dropped = self._db.execute("SELECT value FROM outbox_meta WHERE key = 'dropped'").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ writing

    def put(self, topic: str, body: dict, *, qos: int, retain: bool, kind: OutboxKind | str,
            session: str | None = None) -> int | None:
        """Store a message durably (committed before this returns) and return its id.

        Returns None only for a sample that was dropped at once because
        events and changes fill the whole budget.
        """
        text = _check_put(topic, body, qos, retain, kind)
        kind = OutboxKind(kind)
        size = len(topic.encode("utf-8")) + len(text.encode("utf-8"))
        if size > self.max_bytes:
            raise ValueError(f"a {size}-byte message on {topic!r} is larger than the whole outbox "
                             f"({self.max_bytes} bytes); send less in one message")
        with self._lock:
            with self._transaction() as db:
                freed, dropped = self._drop_samples(db, self._bytes + size - self.max_bytes)
                keep = kind != OutboxKind.SAMPLE or self._bytes - freed + size <= self.max_bytes
                if not keep:
                    dropped += 1
                if dropped:
                    db.execute("UPDATE outbox_meta SET value = value + ? WHERE key = 'dropped'", (dropped,))
                row_id = None
                if keep:
                    row_id = db.execute("INSERT INTO outbox (topic, body, qos, retain, kind, session, size) "
                                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                                        (topic, text, qos, int(retain), kind.value, session, size)).lastrowid
            removed = dropped - (0 if keep else 1)
            self._committed(size * keep - freed, int(keep) - removed, dropped)
            return row_id

    def ack(self, item_id: int) -> None:
        """The broker has it: forget it. An unknown id (a sample dropped while in flight) is fine."""
        self.ack_many([item_id])

    def ack_many(self, ids) -> int:
        """Forget several at once, in one commit (one fsync instead of one per message)."""
        ids = list(ids)
        if not ids:
            return 0
        with self._lock:
            freed, removed = 0, 0
            with self._transaction() as db:
                for start in range(0, len(ids), 500):  # stay under SQLite's host-parameter limit
                    chunk = ids[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    size, n = db.execute(f"SELECT COALESCE(SUM(size), 0), COUNT(*) FROM outbox WHERE id IN ({marks})",
                                         chunk).fetchone()
                    db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)
                    freed, removed = freed + size, removed + n
            self._committed(-freed, -removed, 0)
            return removed

    def _drop_samples(self, db, excess: int) -> tuple[int, int]:
        """Delete the oldest samples until ``excess`` bytes are freed or none are left."""
        freed, dropped = 0, 0
        while freed < excess:
            rows = db.execute("SELECT id, size FROM outbox WHERE kind = 'sample' ORDER BY id LIMIT ?",
                              (DROP_BATCH,)).fetchall()
            if not rows:
                break
            victims = []
            for row_id, size in rows:
                if freed >= excess:
                    break
                victims.append(row_id)
                freed += size
            db.execute(f"DELETE FROM outbox WHERE id IN ({','.join('?' * len(victims))})", victims)
            dropped += len(victims)
        return freed, dropped

    @contextlib.contextmanager
    def _transaction(self):
        # IMMEDIATE takes the write lock up front, so the file's other writer
        # (none today, a second agent by mistake tomorrow) waits instead of failing half-way.
        try:
            with db_util.immediate(self._db) as db:
                yield db
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise AgentError(f"outbox {self.path!r} cannot write: {exc}; free space on the data partition "
                             "or check that only one agent uses this file") from exc

    def _committed(self, size_delta: int, count_delta: int, dropped: int) -> None:
        """Move the in-memory totals only after the commit, so they never count a rolled-back write."""
        was_over = self.over_budget
        self._bytes += size_delta
        self._count += count_delta
        self._dropped += dropped
        if dropped:
            log.info("outbox dropped old samples to stay within its budget",
                     extra={"dropped": dropped, "dropped_total": self._dropped, "max_bytes": self.max_bytes})
        if self.over_budget and not was_over:
            log.warning("outbox over budget: only events and state changes are left and none is dropped",
                        extra={"outbox_bytes": self._bytes, "max_bytes": self.max_bytes, "path": self.path})
        elif was_over and not self.over_budget:
            log.info("outbox back within budget", extra={"outbox_bytes": self._bytes, "max_bytes": self.max_bytes})

    # ------------------------------------------------------------ reading

    def pending(self, limit: int, after: int = 0) -> list[Item]:
        """Up to ``limit`` waiting messages with id greater than ``after``, oldest first."""
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        with self._lock:
            rows = self._db.execute("SELECT id, topic, body, qos, retain, kind, session FROM outbox "
                                    "WHERE id > ? ORDER BY id LIMIT ?", (after, limit)).fetchall()
        return [Item(row_id, topic, json.loads(body), qos, bool(retain), OutboxKind(kind), session)
                for row_id, topic, body, qos, retain, kind, session in rows]

    def bytes(self) -> int:
        """Bytes of topic and body waiting (what ``max_bytes`` bounds)."""
        return self._bytes

    def count(self) -> int:
        return self._count

    @property
    def dropped(self) -> int:
        """Samples dropped to stay within the budget, since the file was made (persisted)."""
        return self._dropped

    @property
    def over_budget(self) -> bool:
        """True while events and changes alone exceed ``max_bytes``: nothing is lost, the disk fills."""
        return self._bytes > self.max_bytes

    def state(self) -> dict:
        return {"count": self._count, "bytes": self._bytes, "max_bytes": self.max_bytes,
                "dropped": self._dropped, "over_budget": self.over_budget}


def _check_put(topic, body, qos, retain, kind) -> str:
    """Programmer errors raise at once; returns the body as JSON text."""
    if not isinstance(topic, str) or not topic or "+" in topic or "#" in topic:
        raise ValueError(f"topic {topic!r} must be a non-empty MQTT topic without wildcards")
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        raise ValueError(f"qos {qos!r} must be 0, 1 or 2")
    if not isinstance(retain, bool):
        raise TypeError(f"retain must be a bool, got {retain!r}")
    if not isinstance(body, dict):
        raise TypeError(f"body must be a dict, got {type(body).__name__}: {body!r}")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _bound_wal(db: sqlite3.Connection, max_bytes: int) -> None:
    """Checkpoint the WAL once it holds about max_bytes / WAL_SHARE and cut the file back to that."""
    page = db.execute("PRAGMA page_size").fetchone()[0]
    pages = min(WAL_MAX_PAGES, max(WAL_MIN_PAGES, max_bytes // WAL_SHARE // page))
    db.execute(f"PRAGMA wal_autocheckpoint = {pages}")
    db.execute(f"PRAGMA journal_size_limit = {pages * page}")


def _connect(path: str) -> sqlite3.Connection:
    try:
        db = db_util.connect(path, "FULL")  # a put that returned survives a power cut
    except sqlite3.Error as exc:
        raise AgentError(f"cannot open outbox {path!r}: {exc}; check the agent's data_dir and its permissions") \
            from None
    return db
