"""What one request reads and writes, opened at its first use and closed when the request ends.

As Flask's tutorial does (``get_db``/``close_db``): the kiosk's ledger and the agent's store are
opened on ``g`` the first time a request needs them and closed in ``teardown_appcontext``, so a page
that needs neither opens nothing, a store that cannot be opened fails only the requests that need it,
and no SQLite connection outlives its request (one held open would hold back the kiosk's
checkpoints). Each of waitress's threads has its own request, so its own connections.

It imports no other lobby module, so the pages, the login and the app factory can all import it
without importing one another: the lobby's imports form a tree (tests/test_lobby_imports.py).
"""

import datetime as dt
import logging
import os
import sqlite3

from flask import Flask, abort, current_app, g

from edge_agent.seam import AgentStore
from kiosk.seam import LedgerReader, RequestsClient, open_reader, open_requests

log = logging.getLogger("lobby")


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close)


def store() -> AgentStore:
    """The agent's store for this request; 503 naming the file and the cause when it cannot be opened."""
    if "store" not in g:
        data_dir = current_app.config["LOBBY"].agent_data_dir
        try:
            g.store = AgentStore(data_dir)
        except (OSError, sqlite3.Error) as exc:
            log.error("the agent's store in %s cannot be opened: %s", data_dir, exc)
            abort(503, description=f"Penyimpanan agen {data_dir}/agent.sqlite3 tidak dapat dibuka ({exc}); "
                                   "periksa izin berkas dan ruang disk. / The agent's store cannot be opened.")
    return g.store


def ledger_made() -> bool:
    """Whether the kiosk has made its ledger yet (it does at its first start)."""
    return os.path.exists(current_app.config["KIOSK"].ledger_path)


def ledger() -> LedgerReader:
    """The kiosk's ledger for this request, read-only; raises KioskError or sqlite3.Error when it
    cannot be read (each page says so in its own way)."""
    if "ledger" not in g:
        g.ledger = open_reader(current_app.config["KIOSK"])
    return g.ledger


def requests() -> RequestsClient:
    """The kiosk's ledger for a staff action's write (today's quota), opened like :func:`ledger`;
    it stamps the write with the kiosk's clock read on the app's clock."""
    if "requests" not in g:
        g.requests = open_requests(current_app.config["KIOSK"], system=current_app.config["CLOCK"])
    return g.requests


def close(exc: BaseException | None = None) -> None:
    """At the end of every request (teardown): close what it opened, whatever happened."""
    for name in ("ledger", "requests", "store"):
        handle = g.pop(name, None)
        if handle is not None:
            handle.close()


def clock() -> float:
    """Now, epoch s, on the app's clock (``CLOCK``: what the screen shows, which tests set)."""
    return current_app.config["CLOCK"]()


def now() -> dt.datetime:
    """Now in the office's time zone, on the app's clock."""
    return dt.datetime.fromtimestamp(clock(), current_app.config["KIOSK"].tz)
