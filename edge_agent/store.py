"""The agent's own small state on disk: the announcement on show and where it is in the kiosk's events.

The lobby page reads the announcement from here, so it survives agent
restarts and power cuts like everything else the agent promises.
"""

import json
import os
import threading

from kiosk import db

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                  -- JSON
);
"""


class AgentStore:
    def __init__(self, data_dir: str):
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "agent.sqlite3")
        self._lock = threading.Lock()
        self._db = db.connect(self.path, "FULL")  # an announcement acknowledged is an announcement kept
        self._db.executescript(SCHEMA)

    def get(self, key: str, default=None):
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def put(self, key: str, value) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, json.dumps(value, sort_keys=True)))

    def delete(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM kv WHERE key = ?", (key,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def read_announcement(data_dir: str) -> dict | None:
    """For the lobby page: the announcement on show, read-only, None if there is none."""
    path = os.path.join(data_dir, "agent.sqlite3")
    if not os.path.exists(path):
        return None
    reader = db.connect_readonly(path)
    try:
        row = reader.execute("SELECT value FROM kv WHERE key = 'announcement'").fetchone()
    finally:
        reader.close()
    return None if row is None else json.loads(row[0])
