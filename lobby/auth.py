"""Staff login, server-side sessions, CSRF tokens and the failed-login limiter.

The password hash is set at install (``python -m lobby
hash-password``); there is no default password, and without a hash the
staff pages say how to set one. Every POST carries the session's CSRF
token, compared in constant time.

Failed logins and open sessions live in the agent's store
(``agent.sqlite3``, opened per request by ``lobby.db``), not in memory: a restart neither forgets failures
nor revives a session, and every process and thread serving the lobby
counts against the same limit. The signed cookie only carries a random
session id; logging out deletes it from the store, so a copied cookie is
worthless afterwards.
"""

import functools
import hashlib
import hmac
import math
import os
import secrets

from flask import abort, current_app, redirect, request, session, url_for
from werkzeug.security import check_password_hash

from common.durable import create_once, remove_orphans, write_atomic
from lobby import db

ACCOUNT = "staff"  # the one staff account: its password is [lobby] staff_password_hash
MAX_FAILURES_PER_CLIENT = 5
MAX_FAILURES_PER_ACCOUNT = 10  # all addresses together: a spray from many addresses gets no more
FAILURE_WINDOW_S = 300.0
SESSION_HOURS = 8
SECRET_BYTES = 32


class LoginLimiter:
    """At most ``per_client`` failed logins per client address and ``per_account`` in all within
    ``window_s``. A password being checked counts as a failure until it turns out right."""

    def __init__(self, store, clock, per_client: int = MAX_FAILURES_PER_CLIENT,
                 per_account: int = MAX_FAILURES_PER_ACCOUNT, window_s: float = FAILURE_WINDOW_S):
        self.store, self.clock = store, clock  # store: a callable giving the request's AgentStore
        self.per_client, self.per_account, self.window_s = per_client, per_account, window_s

    def begin(self, client: str) -> tuple[int | None, int]:
        """``(attempt, 0)``: check the password, then :meth:`end`; ``(None, s)``: wait ``s`` seconds."""
        now = self.clock()
        attempt, retry_at = self.store().begin_login(ACCOUNT, client, now, self.window_s,
                                                     self.per_client, self.per_account)
        return attempt, 0 if attempt is not None else max(1, math.ceil(retry_at - now))

    def end(self, attempt: int, ok: bool) -> None:
        self.store().end_login(attempt, ok)


def _session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(store, now: float) -> None:
    """A new session for staff: a fresh id in the cookie and its hash in the store."""
    session_id = secrets.token_urlsafe(32)
    store.open_session(_session_key(session_id), ACCOUNT, now, now + SESSION_HOURS * 3600)
    session.clear()
    session["sid"] = session_id
    session.permanent = True


def end_session(store) -> None:
    session_id = session.get("sid")
    if isinstance(session_id, str):
        store.close_session(_session_key(session_id))
    session.clear()


def session_open(store, now: float) -> bool:
    session_id = session.get("sid")
    return isinstance(session_id, str) and store.session_open(_session_key(session_id), now)


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    """Before every POST: the form's token must be the session's."""
    if request.method != "POST":
        return
    sent = request.form.get("csrf", "")
    expected = session.get("csrf", "")
    if not expected or not sent.isascii() or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description="Formulir kedaluwarsa atau tidak sah (CSRF token tidak cocok). "
                               "Muat ulang halaman lalu coba lagi. / The form's CSRF token does not match: "
                               "reload the page and try again.")


def password_ok(password: str) -> bool:
    stored = current_app.config["LOBBY"].staff_password_hash
    return bool(stored) and check_password_hash(stored, password)


def staff_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not session_open(db.store(), db.clock()):
            session.pop("sid", None)
            return redirect(url_for("staff.login"))
        return view(*args, **kwargs)
    return wrapped


def load_secret_key(path: str) -> bytes:
    """The session signing key from ``path``, made (0600) at first start; kept across restarts.

    Made with create_once, so two lobby processes starting together share one key and a power
    cut cannot lose its name. A file too short to be a key (left empty by an older version's
    power cut, or edited) is replaced: that costs only the open staff sessions."""
    key = _read_secret(path)
    if key is not None and len(key) >= SECRET_BYTES:
        remove_orphans(path)  # what a power cut while it was made left
        return key
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fresh = secrets.token_bytes(SECRET_BYTES)
    if key is not None:
        write_atomic(path, fresh, mode=0o600)
        return fresh
    if create_once(path, fresh, mode=0o600):
        return fresh
    return load_secret_key(path)  # another process made it first: use theirs


def _read_secret(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
