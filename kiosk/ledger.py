"""The ticket ledger: SQLite in WAL mode with synchronous=FULL. The ledger is the truth.

A ticket is committed before a byte reaches the printer, so a power cut at
any instant loses no issued ticket; the unique constraint on
(office, service, day, number) makes a duplicate number impossible even if
the code above it were wrong. The same file carries the kiosk's events and
state for the edge agent (see docs/architecture.md): readers in WAL mode
never block the writer.
"""

import contextlib
import datetime as dt
import json
import os
import sqlite3
import threading
from typing import NamedTuple

from common import db as db_util
from kiosk.config import Service
from kiosk.errors import LedgerError, QuotaError, TicketNotFound
from kiosk.seam.events import (
    STAFF_KINDS,
    DayFull,
    EventPayload,
    HorizonFull,
    KioskEvent,
    Payload,
    PrintFailed,
    QuotaSet,
    ReprintRequested,
    RequestDone,
    RequestExpired,
    TicketIssued,
    TicketVoid,
    parse_payload,
)
from kiosk.seam.states import RequestKind, TicketStatus
from kiosk.ticket import Ticket

SCHEMA_VERSION = 3  # 2 added requests; 3 added the clock_confirm request
REQUESTS_TABLE = """
CREATE TABLE IF NOT EXISTS requests (              -- asked by staff or the agent; the running kiosk does them
    id           INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a reply's request_id names one request
    kind         TEXT    NOT NULL CHECK (kind IN ('reprint', 'test_print', 'clock_confirm')),
    ticket_id    INTEGER REFERENCES tickets (id),
    requested_at INTEGER NOT NULL,              -- unix ms, the asker's ledger clock
    deadline     INTEGER,                       -- unix ms; not done by then, the asker withdraws it
    UNIQUE (kind, ticket_id)
);
"""
SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    id             INTEGER PRIMARY KEY,
    office_id      TEXT    NOT NULL,
    service        TEXT    NOT NULL,
    service_day    TEXT    NOT NULL,            -- YYYY-MM-DD, office time
    number         INTEGER NOT NULL CHECK (number >= 1),
    issued_at      INTEGER NOT NULL,            -- unix time, milliseconds
    status         TEXT    NOT NULL DEFAULT 'issued'
                   CHECK (status IN ('issued', 'printed', 'print_failed', 'reprinted', 'void')),
    print_attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (office_id, service, service_day, number)
);
CREATE INDEX IF NOT EXISTS tickets_issued_at ON tickets (issued_at);
CREATE INDEX IF NOT EXISTS tickets_status ON tickets (status) WHERE status IN ('issued', 'print_failed');
-- Failed prints by service day: the owed list reads today's and later ones only, however many
-- past days' failures years of history hold. Added after version 3; older kiosks ignore it.
CREATE INDEX IF NOT EXISTS tickets_print_failed ON tickets (service_day) WHERE status = 'print_failed';
CREATE TABLE IF NOT EXISTS quota_overrides (
    office_id   TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    service_day TEXT    NOT NULL,
    quota       INTEGER NOT NULL CHECK (quota >= 0),
    set_at      INTEGER NOT NULL,
    PRIMARY KEY (office_id, service, service_day)
);
CREATE TABLE IF NOT EXISTS events (
    id   INTEGER PRIMARY KEY,                   -- the agent's cursor
    at   INTEGER NOT NULL,                      -- unix time, milliseconds
    kind TEXT    NOT NULL,
    data TEXT    NOT NULL                       -- JSON object
);
""" + REQUESTS_TABLE + """CREATE TABLE IF NOT EXISTS kiosk_state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,                   -- JSON value
    updated_at INTEGER NOT NULL
);
"""
TICKET_COLUMNS = "id, office_id, service, service_day, number, issued_at, status, print_attempts"
# Events staff tools write (the CLI, the agent, the lobby), stamped by a process that may run on a
# wrong clock: they never count in the ledger's latest time, which only the kiosk's own records move.
STAFF_EVENTS = tuple(sorted(STAFF_KINDS))
# The kiosk's latest events, by id, that the ledger's latest time is read from (see high_water).
RECENT_EVENTS = 1000
# The two halves of the owed list (Ledger.owed_prints); each is answered from an index.
OWED_FAILED = (f"SELECT {TICKET_COLUMNS} FROM tickets "
               "WHERE status = 'print_failed' AND service_day >= ?")
OWED_REQUESTED = (f"SELECT {TICKET_COLUMNS} FROM tickets WHERE id IN "
                  "(SELECT ticket_id FROM requests WHERE kind = 'reprint') AND status != 'void'")
# Events older than this are pruned at start so the SD card never fills.
EVENT_RETENTION = dt.timedelta(days=90)


def to_ms(moment: dt.datetime) -> int:
    return round(moment.timestamp() * 1000)


class Request(NamedTuple):
    id: int
    requested_at: dt.datetime
    deadline: dt.datetime | None


class Ledger:
    def __init__(self, path: str, office_id: str, tz, readonly: bool = False):
        self.path = path
        self.office_id = office_id
        self.tz = tz
        self._lock = threading.Lock()
        self._db = open_readonly(path) if readonly else _connect(path)
        if not readonly:
            self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ issuing

    def issue_ticket(self, service: Service, days: list[dt.date], at: dt.datetime) -> Ticket | None:
        """Take the next number on the earliest of ``days`` with room, durably.

        Returns None when every day is full; that is recorded as a
        ``horizon_full`` event in the same transaction.
        """
        with self._write() as db:
            for day in days:
                quota = self._quota(db, service, day)
                taken = self._taken(db, service.code, day)
                if taken < quota:
                    return self._insert(db, service.code, day, taken + 1, quota, at)
            self._event(db, at, HorizonFull(service.code, days[-1] if days else None))
            return None

    def _insert(self, db, code: str, day: dt.date, number: int, quota: int, at: dt.datetime) -> Ticket:
        cur = db.execute(
            "INSERT INTO tickets (office_id, service, service_day, number, issued_at) VALUES (?, ?, ?, ?, ?)",
            (self.office_id, code, day.isoformat(), number, to_ms(at)))
        self._event(db, at, TicketIssued(code, day, number, quota))
        if number == quota:
            self._event(db, at, DayFull(code, day, quota))
        return self._ticket(db, db.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ?",
                                           (cur.lastrowid,)).fetchone())

    def mark_printed(self, ticket_id: int, reprint: bool = False) -> None:
        status = TicketStatus.REPRINTED if reprint else TicketStatus.PRINTED
        with self._write() as db:
            db.execute("UPDATE tickets SET status = ?, print_attempts = print_attempts + 1 "
                       "WHERE id = ? AND status != 'void'", (status, ticket_id))
            db.execute("DELETE FROM requests WHERE kind = 'reprint' AND ticket_id = ?", (ticket_id,))

    def mark_print_failed(self, ticket_id: int, error: str, at: dt.datetime) -> None:
        with self._write() as db:
            db.execute("UPDATE tickets SET status = 'print_failed', print_attempts = print_attempts + 1 "
                       "WHERE id = ? AND status != 'void'", (ticket_id,))
            self._event(db, at, PrintFailed(ticket_id, error))

    def unconfirmed(self) -> list[Ticket]:
        """Tickets committed but never confirmed printed (a power cut mid-print leaves these)."""
        with self._lock:
            # The IN clause lets SQLite use the partial index instead of scanning years of tickets.
            rows = self._db.execute(f"SELECT {TICKET_COLUMNS} FROM tickets WHERE status = 'issued' "
                                    "AND status IN ('issued', 'print_failed') ORDER BY id").fetchall()
            return [self._ticket(self._db, row) for row in rows]

    def owed_prints(self, from_day: dt.date) -> list[Ticket]:
        """Tickets to print again, oldest first: failed ones for ``from_day`` or later, and staff requests.

        Asked at every press, so each query reads only what it returns: two index lookups
        rather than one OR, which SQLite answers by walking every failed print in history."""
        with self._lock:
            failed = self._db.execute(OWED_FAILED, (from_day.isoformat(),)).fetchall()
            requested = self._db.execute(OWED_REQUESTED).fetchall()
            rows = sorted({row[0]: row for row in failed + requested}.values())
            return [self._ticket(self._db, row) for row in rows]

    def request_reprint(self, code: str, day: dt.date, number: int, at: dt.datetime) -> Ticket:
        """Staff ask for a ticket again; the kiosk that owns the printer prints it."""
        ticket = self.find(code, day, number)
        if ticket.status is TicketStatus.VOID:
            raise LedgerError(f"ticket {ticket.label} for {day} is void; it cannot be reprinted")
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO requests (kind, ticket_id, requested_at) VALUES ('reprint', ?, ?)",
                       (ticket.id, to_ms(at)))
            self._event(db, at, ReprintRequested(ticket.id, code, day, number))
        return ticket

    def reprint_pending(self, ticket_id: int) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM requests WHERE kind = 'reprint' AND ticket_id = ?",
                                    (ticket_id,)).fetchone() is not None

    def add_request(self, kind: RequestKind, at: dt.datetime, deadline: dt.datetime | None = None) -> int:
        """The agent or staff ask the running kiosk for a test slip or a clock confirmation; the id to watch.

        ``deadline``: when the asker stops waiting and withdraws it (``expire_request``)."""
        with self._write() as db:
            return db.execute("INSERT INTO requests (kind, requested_at, deadline) VALUES (?, ?, ?)",
                              (kind, to_ms(at), None if deadline is None else to_ms(deadline))).lastrowid

    def requests(self, kind: RequestKind) -> list[int]:
        return [r.id for r in self.pending_requests(kind)]

    def pending_requests(self, kind: RequestKind) -> list[Request]:
        with self._lock:
            rows = self._db.execute("SELECT id, requested_at, deadline FROM requests WHERE kind = ? ORDER BY id",
                                    (kind,)).fetchall()
        return [Request(i, self._moment(at), None if deadline is None else self._moment(deadline))
                for i, at, deadline in rows]

    def expire_request(self, request_id: int, at: dt.datetime) -> bool:
        """Withdraw a request not done yet (a ``request_expired`` event says so); False if it was done."""
        with self._write() as db:
            row = db.execute("SELECT kind FROM requests WHERE id = ?", (request_id,)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM requests WHERE id = ?", (request_id,))
            self._event(db, at, RequestExpired(request_id, RequestKind(row[0])))
            return True

    def request_done(self, answer: RequestDone, at: dt.datetime) -> None:
        """The running kiosk did a request: gone from the table, its answer an event, at once."""
        with self._write() as db:
            db.execute("DELETE FROM requests WHERE id = ?", (answer.request_id,))
            self._event(db, at, answer)

    def request_result(self, request_id: int) -> dict | None:
        """What the kiosk answered to a request it has done (None while pending or pruned)."""
        with self._lock:  # among recent events only: the answer follows its request within seconds
            row = self._db.execute("SELECT data FROM events WHERE id > (SELECT MAX(id) - 1000 FROM events) "
                                   "AND kind IN ('request_done', 'request_expired') "
                                   "AND json_extract(data, '$.request_id') = ? "
                                   "ORDER BY id DESC LIMIT 1", (request_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def request_pending(self, request_id: int) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM requests WHERE id = ?", (request_id,)).fetchone() is not None

    # ------------------------------------------------------------ quotas and counts

    def quota(self, service: Service, day: dt.date) -> int:
        with self._lock:
            return self._quota(self._db, service, day)

    def taken(self, code: str, day: dt.date) -> int:
        """Numbers handed out that day (a void ticket keeps its number and its place)."""
        with self._lock:
            return self._taken(self._db, code, day)

    def set_quota(self, service: Service, day: dt.date, quota: int, at: dt.datetime) -> int:
        """Set ``day``'s quota for ``service``; never below what is already taken."""
        if isinstance(quota, bool) or not isinstance(quota, int) or quota < 0:
            raise QuotaError(f"quota {quota!r} must be a whole number 0 or more")
        with self._write() as db:
            taken = self._taken(db, service.code, day)
            if quota < taken:
                raise QuotaError(f"cannot set {service.code} on {day} to {quota}: {taken} tickets are "
                                 f"already issued; set {taken} or more")
            db.execute("INSERT OR REPLACE INTO quota_overrides VALUES (?, ?, ?, ?, ?)",
                       (self.office_id, service.code, day.isoformat(), quota, to_ms(at)))
            self._event(db, at, QuotaSet(service.code, day, quota, taken))
        return taken

    def _quota(self, db, service: Service, day: dt.date) -> int:
        row = db.execute("SELECT quota FROM quota_overrides WHERE office_id = ? AND service = ? "
                         "AND service_day = ?", (self.office_id, service.code, day.isoformat())).fetchone()
        return service.daily_quota if row is None else row[0]

    def _taken(self, db, code: str, day: dt.date) -> int:
        row = db.execute("SELECT MAX(number) FROM tickets WHERE office_id = ? AND service = ? "
                         "AND service_day = ?", (self.office_id, code, day.isoformat())).fetchone()
        return row[0] or 0

    # ------------------------------------------------------------ staff actions

    def find(self, code: str, day: dt.date, number: int) -> Ticket:
        with self._lock:
            row = self._db.execute(
                f"SELECT {TICKET_COLUMNS} FROM tickets WHERE office_id = ? AND service = ? "
                "AND service_day = ? AND number = ?", (self.office_id, code, day.isoformat(), number)).fetchone()
            if row is None:
                raise TicketNotFound(f"no ticket {code}-{number:03d} for {day} in this ledger; "
                                     "check the service letter, date and number")
            return self._ticket(self._db, row)

    def void(self, code: str, day: dt.date, number: int, at: dt.datetime, reason: str = "") -> Ticket:
        ticket = self.find(code, day, number)
        if ticket.status is TicketStatus.VOID:
            raise LedgerError(f"ticket {ticket.label} for {day} is already void")
        with self._write() as db:
            db.execute("UPDATE tickets SET status = 'void' WHERE id = ?", (ticket.id,))
            db.execute("DELETE FROM requests WHERE ticket_id = ?", (ticket.id,))  # a void ticket is not reprinted
            self._event(db, at, TicketVoid(ticket.id, code, day, number, reason))
        return ticket

    # ------------------------------------------------------------ events and state (the agent's seam)

    def record_event(self, event: Payload, at: dt.datetime) -> None:
        with self._write() as db:
            self._event(db, at, event)

    def set_state(self, key: str, value, at: dt.datetime, event: Payload | None = None) -> bool:
        """Store ``value`` under ``key`` only if it changed (SD cards wear); return whether it did.

        ``event`` is recorded in the same transaction, so a power cut cannot keep the new state and
        lose the event that says so."""
        text = json.dumps(value, sort_keys=True)
        with self._write() as db:
            row = db.execute("SELECT value FROM kiosk_state WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] == text:
                return False
            db.execute("INSERT OR REPLACE INTO kiosk_state VALUES (?, ?, ?)", (key, text, to_ms(at)))
            if event is not None:
                self._event(db, at, event)
            return True

    def high_water(self) -> dt.datetime | None:
        """The latest moment the kiosk recorded in the ledger; the clock never runs before it.

        Staff writes (quota overrides, requests, ``STAFF_EVENTS``) do not count: a staff tool run
        on a wrong clock must not hold the kiosk at its time. Nor does anything before a confirmed
        step back (``set_latest_time``). The kiosk stamps its events with this clock, which never
        goes back past the ledger on its own, so the latest of them are among the last written:
        only those are read (a scan of 90 days of events took twice as long as all else)."""
        staff = ", ".join("?" * len(STAFF_EVENTS))
        with self._lock:
            reset = self._db.execute("SELECT value FROM kiosk_state WHERE key = 'clock_reset'").fetchone()
            since = json.loads(reset[0]) if reset else {"ticket_id": 0, "event_id": 0}
            row = self._db.execute(
                "SELECT MAX(m) FROM (SELECT MAX(issued_at) AS m FROM tickets WHERE id > ? "
                "UNION ALL SELECT MAX(at) FROM (SELECT at FROM events "
                f"WHERE kind NOT IN ({staff}) AND id >= ? ORDER BY id DESC LIMIT {RECENT_EVENTS}) "
                "UNION ALL SELECT MAX(updated_at) FROM kiosk_state)",
                (since["ticket_id"], *STAFF_EVENTS, since["event_id"])).fetchone()
        return None if row[0] is None else self._moment(row[0])

    def set_latest_time(self, at: dt.datetime, clock: dict, event: EventPayload) -> None:
        """Staff confirmed a clock set back before the ledger's latest time: from ``at`` on, the
        later times already recorded (tickets and events under a wrong date) no longer count, the
        kiosk's state is restamped, and the clock record and ``event`` are written, all at once."""
        with self._write() as db:
            self._event(db, at, event)
            event_id = db.execute("SELECT MAX(id) FROM events").fetchone()[0]
            ticket_id = db.execute("SELECT COALESCE(MAX(id), 0) FROM tickets").fetchone()[0]
            db.execute("UPDATE kiosk_state SET updated_at = ? WHERE updated_at > ?", (to_ms(at), to_ms(at)))
            for key, value in (("clock_reset", {"ticket_id": ticket_id, "event_id": event_id}), ("clock", clock)):
                db.execute("INSERT OR REPLACE INTO kiosk_state VALUES (?, ?, ?)",
                           (key, json.dumps(value, sort_keys=True), to_ms(at)))

    def _moment(self, ms: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ms / 1000, self.tz)

    def events(self, after_id: int = 0, limit: int = 100) -> list[KioskEvent]:
        """Events after the reader's cursor, oldest first, typed: the agent's stream."""
        return [KioskEvent(i, self._moment(at), parse_payload(kind, json.loads(data)))
                for i, at, kind, data in self._event_rows(after_id, limit)]

    def events_since(self, after_id: int = 0, limit: int = 100) -> list[dict]:
        """The same events as they are stored: kind and JSON data as written."""
        return [{"id": i, "at": self._moment(at).isoformat(), "kind": kind, "data": json.loads(data)}
                for i, at, kind, data in self._event_rows(after_id, limit)]

    def _event_rows(self, after_id: int, limit: int) -> list[tuple]:
        with self._lock:
            return self._db.execute("SELECT id, at, kind, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
                                    (after_id, limit)).fetchall()

    def last_event_id(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]

    def state(self) -> dict:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM kiosk_state").fetchall()
        return {key: json.loads(value) for key, value in rows}

    def checkpoint(self) -> None:
        """Move the WAL into the database now, while idle, so a press rarely pays for it."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def prune_events(self, now: dt.datetime) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM events WHERE at < ?", (to_ms(now - EVENT_RETENTION),)).rowcount

    def _event(self, db, at: dt.datetime, event: Payload) -> None:
        # The JSON boundary: the row is what the kiosk has always written for this kind.
        db.execute("INSERT INTO events (at, kind, data) VALUES (?, ?, ?)",
                   (to_ms(at), str(event.event_kind), json.dumps(event.to_json(), sort_keys=True)))

    # ------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _write(self):
        # Two writers never both read the same "next number": see db.immediate.
        with self._lock, db_util.immediate(self._db) as db:
            yield db

    def _ticket(self, db, row) -> Ticket:
        tid, office, code, day, number, issued_ms, status, attempts = row
        before = db.execute("SELECT COUNT(*) FROM tickets WHERE office_id = ? AND service = ? AND "
                            "service_day = ? AND number < ? AND status != 'void'",
                            (office, code, day, number)).fetchone()[0]
        return Ticket(id=tid, office_id=office, service=code, service_day=dt.date.fromisoformat(day),
                      number=number, issued_at=dt.datetime.fromtimestamp(issued_ms / 1000, self.tz),
                      people_before=before, status=TicketStatus(status), print_attempts=attempts)

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LedgerError(f"ledger {self.path} has schema {version}, newer than this kiosk "
                              f"({SCHEMA_VERSION}); install the newer kiosk software")
        with self._lock:
            # One transaction: a first start cut while it runs leaves the whole schema or none of it.
            script = f"BEGIN IMMEDIATE;\n{SCHEMA}{self._upgrades()}PRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
            try:
                self._db.executescript(script)
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _upgrades(self) -> str:
        """Changes made without a version bump (older software still reads the file); empty for a
        new ledger, whose CREATE TABLE has them already."""
        found = self._db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'requests'").fetchone()
        if found is None or "AUTOINCREMENT" in found[0]:
            return ""
        # Before: ids reused once the table emptied (every reply said request_id 1), and in schema 2
        # a narrower kind CHECK, which SQLite cannot alter. The table is small and transient: rebuilt,
        # its counter starting past every id a reply already named.
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
        deadline = "deadline" if "deadline" in columns else "NULL"
        return f"""ALTER TABLE requests RENAME TO requests_reused;
{REQUESTS_TABLE}INSERT INTO requests (id, kind, ticket_id, requested_at, deadline)
    SELECT id, kind, ticket_id, requested_at, {deadline} FROM requests_reused;
DROP TABLE requests_reused;
INSERT INTO sqlite_sequence (name, seq) SELECT 'requests', 0
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'requests');
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(json_extract(data, '$.request_id')), 0)
    FROM events WHERE json_extract(data, '$.request_id') IS NOT NULL)) WHERE name = 'requests';
"""


def _connect(path: str) -> sqlite3.Connection:
    try:
        db = db_util.connect(path, "FULL")  # a committed ticket survives a power cut
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open ledger {path!r}: {exc}; check data_dir and its permissions") from None
    return db


def open_existing(config, readonly: bool = True) -> Ledger:
    """The kiosk's ledger for a reader or a staff tool: never creates one where the kiosk has not run."""
    path = config.ledger_path
    if not os.path.exists(path):
        raise LedgerError(f"no ledger at {path} yet; has the kiosk run with data_dir = {config.data_dir!r}?")
    return Ledger(path, config.office_id, config.tz, readonly=readonly)


def open_readonly(path: str) -> sqlite3.Connection:
    """A read-only connection for the agent and ``kiosk status``; never blocks the writer."""
    try:
        return db_util.connect_readonly(path)
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot read ledger {path!r}: {exc}; is data_dir right?") from None
