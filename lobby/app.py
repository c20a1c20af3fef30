"""The Flask app factory. Nothing here runs at import: config, files and clocks are read in create_app;
the ledger and the agent's store are opened per request (lobby.db)."""

import datetime as dt
import logging
import os
import sqlite3
import time

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from kiosk.seam import KioskError, Watch
from lobby import auth, db, staff, verify, views
from lobby import config as lconfig

log = logging.getLogger("lobby")
# The largest request body the lobby takes. Its biggest form, an announcement of 280 characters, is under
# 4 KB even with every character percent-encoded; waitress refuses anything larger before reading it.
MAX_BODY_BYTES = 16 * 1024
TOO_LARGE = (f"Permintaan terlalu besar: formulir lobi paling banyak {MAX_BODY_BYTES // 1024} KB. / The request "
             f"is larger than the lobby's {MAX_BODY_BYTES // 1024} KB limit.")

CSP = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"


def create_app(test_config: dict | None = None) -> Flask:
    """The lobby app. ``test_config`` may give ``KIOSK`` and ``LOBBY`` (configs), ``CLOCK`` (epoch s),
    ``SECRET_KEY``, or ``CONFIG_PATH`` (the kiosk TOML; default: $KIOSK_CONFIG)."""
    app = Flask(__name__)
    app.config.update(test_config or {})
    if "KIOSK" not in app.config:
        path = app.config.get("CONFIG_PATH") or os.environ.get("KIOSK_CONFIG")
        app.config["KIOSK"], app.config["LOBBY"] = lconfig.load(path)
    elif "LOBBY" not in app.config:
        app.config["LOBBY"] = lconfig.from_kiosk_config(app.config["KIOSK"])
    app.config.setdefault("CLOCK", time.time)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = auth.load_secret_key(app.config["LOBBY"].secret_key_file)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=auth.SESSION_HOURS),
                      MAX_CONTENT_LENGTH=MAX_BODY_BYTES, MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES, MAX_FORM_PARTS=20)
    app.extensions["lobby_limiter"] = auth.LoginLimiter(db.store, app.config["CLOCK"])
    # Kept across requests: it follows the heartbeat on the monotonic clock, so a step of the system
    # clock is not taken for a hung kiosk. Judged on the real clock, as the heartbeat's mtime is, never
    # on CLOCK (what the screen shows, which tests set).
    kiosk = app.config["KIOSK"]
    app.extensions["kiosk_watch"] = Watch(kiosk.data_dir, kiosk.heartbeat_stale_s)
    db.init_app(app)
    _register(app)
    return app


def _register(app: Flask) -> None:
    app.register_blueprint(views.bp)
    app.register_blueprint(verify.bp)
    app.register_blueprint(staff.bp)
    app.before_request(auth.check_csrf)
    app.context_processor(lambda: {"csrf_token": auth.csrf_token, "kiosk": app.config["KIOSK"],
                                   "lobby": app.config["LOBBY"]})
    app.after_request(_headers)
    app.register_error_handler(HTTPException, _error)
    app.register_error_handler(sqlite3.Error, _storage_error)
    app.register_error_handler(KioskError, _storage_error)


def _headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if response.mimetype in ("application/json", "text/html"):
        response.headers["Cache-Control"] = "no-store"
    return response


def _error(exc: HTTPException):
    message = TOO_LARGE if exc.code == 413 else exc.description
    return render_template("error.html", code=exc.code, name=exc.name, message=message), exc.code


def _storage_error(exc: Exception):
    """A store or ledger that cannot be read or written now (locked, full disk, damaged) is a state."""
    log.error("lobby request failed on storage: %s", exc)
    message = (f"Data tidak dapat dibaca atau disimpan saat ini ({exc}); tidak ada yang diubah. Coba lagi sebentar "
               "lagi; jika berulang, periksa disk dan log. / Storage is unavailable now; nothing was changed.")
    return render_template("error.html", code=503, name="Service Unavailable", message=message), 503
