"""The Flask app factory. Nothing here runs at import: config, files and clocks are read in create_app."""

import datetime as dt
import os
import time

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from edge_agent.lobby import auth
from edge_agent.lobby import config as lconfig

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
                      PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=8))
    app.extensions["lobby_limiter"] = auth.LoginLimiter(app.config["CLOCK"])
    _register(app)
    return app


def _register(app: Flask) -> None:
    from edge_agent.lobby import staff, verify, views

    app.register_blueprint(views.bp)
    app.register_blueprint(verify.bp)
    app.register_blueprint(staff.bp)
    app.before_request(auth.check_csrf)
    app.context_processor(lambda: {"csrf_token": auth.csrf_token, "kiosk": app.config["KIOSK"],
                                   "lobby": app.config["LOBBY"]})
    app.after_request(_headers)
    app.register_error_handler(HTTPException, _error)


def _headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if response.mimetype in ("application/json", "text/html"):
        response.headers["Cache-Control"] = "no-store"
    return response


def _error(exc: HTTPException):
    return render_template("error.html", code=exc.code, name=exc.name, message=exc.description), exc.code


def now(app) -> dt.datetime:
    return dt.datetime.fromtimestamp(app.config["CLOCK"](), app.config["KIOSK"].tz)
