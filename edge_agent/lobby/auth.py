"""Staff login, CSRF tokens and the failed-login limiter.

The password hash is set at install (``python -m edge_agent.lobby
hash-password``); there is no default password, and without a hash the
staff pages say how to set one. Every POST carries the session's CSRF
token, compared in constant time.
"""

import functools
import hmac
import math
import os
import secrets
import threading
from collections import deque

from flask import abort, current_app, redirect, request, session, url_for
from werkzeug.security import check_password_hash

MAX_FAILURES = 5
FAILURE_WINDOW_S = 300.0


class LoginLimiter:
    """At most ``limit`` failed logins per client within ``window_s``; the clock is a parameter."""

    def __init__(self, clock, limit: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S):
        self.clock, self.limit, self.window_s = clock, limit, window_s
        self._failures: dict[str, deque] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 when it may now."""
        with self._lock:
            times = self._recent(client)
            if len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[0] + self.window_s - self.clock()))

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client).append(self.clock())

    def _recent(self, client: str) -> deque:
        times = self._failures.setdefault(client, deque())
        while times and self.clock() - times[0] >= self.window_s:
            times.popleft()
        return times


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
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description="Formulir kedaluwarsa atau tidak sah (CSRF token tidak cocok). "
                               "Muat ulang halaman lalu coba lagi. / The form's CSRF token does not match: "
                               "reload the page and try again.")


def password_ok(password: str) -> bool:
    stored = current_app.config["LOBBY"].staff_password_hash
    return bool(stored) and check_password_hash(stored, password)


def staff_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not session.get("staff"):
            return redirect(url_for("staff.login"))
        return view(*args, **kwargs)
    return wrapped


def load_secret_key(path: str) -> bytes:
    """The session signing key from ``path``, made (0600) at first start; kept across restarts."""
    try:
        with open(path, "rb") as f:
            key = f.read()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return key
