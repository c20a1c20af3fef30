"""SQLite the way every file of this project uses it: WAL, explicit transactions, one writer lock.

WAL lets the agent and ``kiosk status`` read while the kiosk writes;
``synchronous`` is FULL where a returned write must survive a power cut
(tickets, the outbox, boot marks) and NORMAL where losing the last write
costs nothing (the outage log re-learns it on the next round).
"""

import contextlib
import sqlite3
import urllib.parse


def connect(path: str, synchronous: str = "FULL", timeout: float = 5.0) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal; raises sqlite3.Error."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    return db


def connect_readonly(path: str, timeout: float = 5.0) -> sqlite3.Connection:
    # A URI: "#" or "?" in a directory name would end the path there, and with it "mode=ro"
    # (a new, empty database beside the real one). quote() keeps "/" and escapes the rest.
    uri = f"file:{urllib.parse.quote(path)}?mode=ro"
    return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout)


@contextlib.contextmanager
def immediate(db: sqlite3.Connection):
    """One write transaction. IMMEDIATE takes the write lock up front, so a second writer waits
    instead of reading stale data and failing at commit."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
