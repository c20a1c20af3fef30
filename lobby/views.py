"""The lobby screen, its JSON and the health check."""

from flask import Blueprint, current_app, jsonify, render_template

from kiosk.liveness import Watch
from lobby.status import build_status

bp = Blueprint("lobby", __name__)


def current_status() -> dict:
    app = current_app
    kiosk = app.config["KIOSK"]
    return build_status(kiosk, app.config["LOBBY"], app.config["CLOCK"](), _kiosk_watch(app).read())


def _kiosk_watch(app) -> Watch:
    # One per app, kept across requests: it follows the heartbeat on the monotonic clock, so a step of
    # the system clock is not taken for a hung kiosk. Judged on the real clock, as the heartbeat's mtime
    # is, never on CLOCK (what the screen shows, which tests set).
    watch = app.extensions.get("kiosk_watch")
    if watch is None:
        kiosk = app.config["KIOSK"]
        watch = app.extensions.setdefault("kiosk_watch", Watch(kiosk.data_dir, kiosk.heartbeat_stale_s))
    return watch


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
