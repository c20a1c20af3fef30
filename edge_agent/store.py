"""The agent's own small state on disk: the announcement on show, where it is in the kiosk's events,
and the lobby's staff logins (failed attempts and open sessions).

The lobby page reads the announcement from here, so it survives agent
restarts and power cuts like everything else the agent promises. The login
tables are here for the same reason: a restart must neither reset the
failed-login count nor revive a session staff logged out of.
"""

import json
import os
import re
import threading

from common import db
from edge_agent.network_file import clean_text, report_once, time_problem
from edge_agent.schema import Severity

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                  -- JSON
);
-- A failed staff login, or one whose password is being checked: it counts as failed until it succeeds
-- (then it is deleted), so parallel attempts cannot get more checks than the limit.
CREATE TABLE IF NOT EXISTS login_attempts (
    id      INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    client  TEXT NOT NULL,               -- the client's address
    at      REAL NOT NULL                -- epoch s
);
CREATE INDEX IF NOT EXISTS login_attempts_account ON login_attempts(account, at);
CREATE TABLE IF NOT EXISTS staff_sessions (
    id_hash    TEXT PRIMARY KEY,         -- SHA-256 of the session id in the signed cookie
    account    TEXT NOT NULL,
    expires_at REAL NOT NULL             -- epoch s
);
"""
SCHEMA_NAMES = tuple(re.findall(r"CREATE (?:TABLE|INDEX) IF NOT EXISTS (\w+)", SCHEMA))
_COUNT_MADE = f"SELECT count(*) FROM sqlite_master WHERE name IN ({', '.join('?' * len(SCHEMA_NAMES))})"
SEVERITIES = tuple(Severity)


class AgentStore:
    def __init__(self, data_dir: str):
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "agent.sqlite3")
        self._lock = threading.Lock()
        self._db = db.connect(self.path, "FULL")  # an announcement acknowledged is an announcement kept
        # The lobby opens the store for every request: once the tables are there, opening it is a read,
        # not a schema script competing with the login writes of the other request threads.
        made = self._db.execute(_COUNT_MADE, SCHEMA_NAMES).fetchone()[0]
        if made < len(SCHEMA_NAMES):  # new, or made by a version before a table was added
            self._db.executescript(SCHEMA)

    def get(self, key: str, default=None):
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def announcement(self) -> tuple[dict | None, list[str]]:
        """The stored announcement checked as the lobby checks it (None if there is none or it cannot be
        shown), and what had to be dropped or repaired. Its maintenance targets are kept when they are
        a list of names: clearing it ends their maintenance."""
        with self._lock:  # as bytes: a hand edit may hold any bytes, and the agent must not choke on them
            row = self._db.execute("SELECT CAST(value AS BLOB) FROM kv WHERE key = 'announcement'").fetchone()
        if row is None:
            return None, []
        stored = bytes(row[0]).decode("utf-8", "replace")
        announcement, problems = check_announcement(stored)
        if announcement is not None:
            targets = json.loads(stored).get("maintenance_targets")
            if targets and isinstance(targets, list) and all(isinstance(t, str) for t in targets):
                announcement["maintenance_targets"] = targets
            elif targets not in (None, []):
                problems.append(f"the announcement's maintenance_targets {_short(targets)} are not a list of "
                                "target names; ignored")
        return announcement, problems

    def put(self, key: str, value) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, json.dumps(value, sort_keys=True)))

    def delete(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM kv WHERE key = ?", (key,))

    # ---------------------------------------------------------------- staff logins (lobby.auth)

    def begin_login(self, account: str, client: str, now: float, window_s: float,
                    per_client: int, per_account: int) -> tuple[int | None, float]:
        """``(attempt id, 0)`` when ``client`` may try a password now, ``(None, retry at)`` when not.
        One write transaction: parallel attempts (threads or processes) are counted one after another."""
        with self._lock, db.immediate(self._db):
            # Older than the window, or from a clock that was ahead (a restart with a wrong time).
            self._db.execute("DELETE FROM login_attempts WHERE at <= ? OR at > ?", (now - window_s, now + window_s))
            for column, value, limit in (("client", client, per_client), ("account", account, per_account)):
                times = [t for (t,) in self._db.execute(
                    f"SELECT at FROM login_attempts WHERE {column} = ? ORDER BY at", (value,))]
                if len(times) >= limit:
                    return None, times[len(times) - limit] + window_s
            cursor = self._db.execute("INSERT INTO login_attempts (account, client, at) VALUES (?, ?, ?)",
                                      (account, client, now))
            return cursor.lastrowid, 0.0

    def end_login(self, attempt_id: int, ok: bool) -> None:
        """A right password forgets its attempt; a wrong one keeps it as a failure."""
        if ok:
            with self._lock:
                self._db.execute("DELETE FROM login_attempts WHERE id = ?", (attempt_id,))

    def open_session(self, id_hash: str, account: str, now: float, expires_at: float) -> None:
        with self._lock, db.immediate(self._db):
            self._db.execute("DELETE FROM staff_sessions WHERE expires_at <= ?", (now,))
            self._db.execute("INSERT OR REPLACE INTO staff_sessions VALUES (?, ?, ?)", (id_hash, account, expires_at))

    def session_open(self, id_hash: str, now: float) -> bool:
        with self._lock:
            row = self._db.execute("SELECT expires_at FROM staff_sessions WHERE id_hash = ?", (id_hash,)).fetchone()
        return row is not None and row[0] > now

    def close_session(self, id_hash: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM staff_sessions WHERE id_hash = ?", (id_hash,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def read_announcement(data_dir: str) -> dict | None:
    """For the lobby page: the announcement on show, read-only, checked; None if there is none.

    The store may hold anything (an older agent, a hand edit, a bad command): a wrong field is
    dropped or repaired, never passed on to the page, and the problem is logged once."""
    path = os.path.join(data_dir, "agent.sqlite3")
    if not os.path.exists(path):
        return None
    reader = db.connect_readonly(path)
    reader.text_factory = lambda raw: raw.decode("utf-8", "replace")  # a hand edit may hold any bytes
    try:
        row = reader.execute("SELECT value FROM kv WHERE key = 'announcement'").fetchone()
    finally:
        reader.close()
    if row is None:
        return None
    announcement, problems = check_announcement(row[0])
    for problem in problems:
        report_once(f"{path}: {problem}")
    return announcement


def check_announcement(stored: str) -> tuple[dict | None, list[str]]:
    """The stored JSON as an announcement the page can show, and what had to be dropped or repaired."""
    try:
        value = json.loads(stored)
    except ValueError as exc:
        return None, [f"the announcement {_short(stored)} is not JSON ({exc}); not shown. "
                      "Post it again or clear it (MQTT clear_announcement or the staff page)"]
    if not isinstance(value, dict):
        return None, [f"the announcement {_short(value)} is not an object; not shown. Post it again or clear it"]
    problems: list[str] = []
    text = value.get("text")
    if not isinstance(text, str) or not text.strip():
        return None, [f"the announcement's text {_short(text)} is not a text; not shown. Post it again or clear it"]
    out = {"text": _clean_text(text, "text", problems), "severity": value.get("severity", "info")}
    if out["severity"] not in SEVERITIES:
        problems.append(f"the announcement's severity {_short(out['severity'])} is not one of "
                        f"{', '.join(SEVERITIES)}; shown as info")
        out["severity"] = "info"
    for key in ("announced_at", "by"):
        if isinstance(value.get(key), str):
            out[key] = _clean_text(value[key], key, problems)
    until = value.get("until")
    if until is not None:
        problem = time_problem(until)
        if problem:
            problems.append(f"the announcement's until {_short(until)} {problem}; shown without an end time")
        else:
            out["until"] = until
    return out, problems


def _clean_text(text: str, name: str, problems: list) -> str:
    clean = clean_text(text)
    if clean != text:
        problems.append(f"the announcement's {name} {_short(text)} holds lone surrogates; shown as U+FFFD")
    return clean


def _short(value) -> str:
    text = ascii(value)
    return text if len(text) <= 80 else text[:77] + "..."
