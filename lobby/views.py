"""The lobby screen, its JSON and the health check."""

from flask import Blueprint, current_app, jsonify, render_template

from lobby import db
from lobby.status import build_status

bp = Blueprint("lobby", __name__)


def current_status() -> dict:
    config = current_app.config
    watch = current_app.extensions["kiosk_watch"]
    return build_status(config["KIOSK"], config["LOBBY"], db.clock(), db.ledger, watch.read())


@bp.get("/")
def index():
    return render_template("lobby.html", status=current_status())


@bp.get("/api/status")
def api_status():
    return jsonify(current_status())


@bp.get("/healthz")
def healthz():
    status = current_status()
    return jsonify({"ok": True, "stale": status["stale"], "data_as_of": status["data_as_of"],
                    "counts_error": status["counts_error"], "kiosk": status["kiosk"]["state"]})
