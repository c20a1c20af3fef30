"""Staff actions behind a login: post or clear the announcement, lower today's quota for a service.

Every action checks its input first and changes nothing on a bad value;
the error page names the value and the fix.
"""

import datetime as dt
import re

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from edge_agent.seam import SEVERITIES, read_announcement
from kiosk.seam import KioskError
from lobby import auth, db

bp = Blueprint("staff", __name__, url_prefix="/staff")
QUOTA_DIGITS = re.compile(r"[0-9]{1,6}")  # ASCII only: int() would also take '²' or '٣' and choke on 5,000 digits
MAX_TEXT_CHARS = 280
NOT_SET = ("Login staf belum diaktifkan: lobby.staff_password_hash belum diisi. Buat hash dengan "
           "`python -m lobby hash-password`, tulis di [lobby] staff_password_hash, lalu mulai ulang. "
           "/ Staff login is disabled until lobby.staff_password_hash is set.")


def _client() -> str:
    return request.remote_addr or "unknown"


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not current_app.config["LOBBY"].staff_password_hash:
        abort(503, description=NOT_SET)
    if request.method == "GET":
        return render_template("login.html")
    limiter = current_app.extensions["lobby_limiter"]
    attempt, wait = limiter.begin(_client())
    if attempt is None:
        return _too_many(wait)
    ok = auth.password_ok(request.form.get("password", ""))
    limiter.end(attempt, ok)
    if not ok:
        return render_template("login.html", error="Kata sandi salah. / Wrong password."), 401
    auth.start_session(db.store(), db.clock())
    return redirect(url_for("staff.home"))


def _too_many(wait: int):
    message = (f"Terlalu banyak percobaan masuk yang gagal. Coba lagi dalam {wait} detik. / Too many failed "
               f"logins: try again in {wait} s.")
    response = current_app.response_class(
        render_template("error.html", code=429, name="Too Many Requests", message=message), 429)
    response.headers["Retry-After"] = str(wait)
    return response


@bp.post("/logout")
def logout():
    auth.end_session(db.store())
    return redirect(url_for("lobby.index"))


@bp.get("")
@auth.staff_required
def home():
    return render_template("staff.html", announcement=_announcement(), severities=SEVERITIES,
                           services=_quotas())


@bp.post("/announce")
@auth.staff_required
def announce():
    text = " ".join(request.form.get("text", "").split())
    severity = request.form.get("severity", "info")
    if not 1 <= len(text) <= MAX_TEXT_CHARS:
        abort(400, description=f"Teks pengumuman {len(text)} karakter; tulis 1 sampai {MAX_TEXT_CHARS}. "
                               f"/ The text is {len(text)} characters; give 1 to {MAX_TEXT_CHARS}.")
    if severity not in SEVERITIES:
        abort(400, description=f"Tingkat {severity!r} tidak dikenal; pilih salah satu dari {', '.join(SEVERITIES)}.")
    value = {"text": text, "severity": severity, "announced_at": db.now().isoformat(timespec="seconds"),
             "by": "staff"}
    until = _until(request.form.get("until", "").strip())
    if until:
        value["until"] = until
    _put(value)
    flash("Pengumuman ditampilkan. / Announcement posted.")
    return redirect(url_for("staff.home"))


@bp.post("/clear")
@auth.staff_required
def clear():
    db.store().delete("announcement")
    flash("Pengumuman dihapus. / Announcement cleared.")
    return redirect(url_for("staff.home"))


@bp.post("/quota")
@auth.staff_required
def quota():
    kiosk = current_app.config["KIOSK"]
    code = request.form.get("service", "")
    try:
        service = kiosk.service(code)
    except KeyError:
        abort(400, description=f"Layanan {code!r} tidak ada; pilih salah satu dari "
                               f"{', '.join(s.code for s in kiosk.services)}.")
    new = _whole(request.form.get("quota", ""))
    if not db.ledger_made():
        abort(503, description=f"Buku antrean {kiosk.ledger_path} belum ada: apakah kios sudah berjalan?")
    ledger = db.requests()  # the one write a reader of the kiosk makes here
    # The kiosk's clock, not the system's: a clock leapt ahead must not move the ledger's time.
    at = ledger.now()
    current = ledger.quota(service, at.date())
    if new >= current:
        abort(400, description=f"Kuota baru {new} tidak lebih kecil dari kuota hari ini {current}; di sini kuota "
                               f"hanya dapat diturunkan (isi angka di bawah {current}).")
    try:
        ledger.set_quota(service, at.date(), new, at)
    except KioskError as exc:
        abort(400, description=f"Kuota tidak diubah: {exc}")
    flash(f"Kuota {service.code} hari ini sekarang {new}. / Today's quota for {service.code} is now {new}.")
    return redirect(url_for("staff.home"))


def _whole(text: str) -> int:
    text = text.strip()
    if not QUOTA_DIGITS.fullmatch(text):
        shown = text if len(text) <= 20 else f"{text[:20]}... ({len(text)} karakter)"
        abort(400, description=f"Kuota {shown!r} bukan bilangan bulat 0 sampai 999999; isi angka 0-9, misalnya 50. "
                               f"/ The quota must be a whole number 0 to 999999 in digits 0-9.")
    return int(text)


def _until(text: str) -> str | None:
    """``HH:MM`` today in office time, as ISO 8601 with offset; must be later than now."""
    if not text:
        return None
    try:
        hhmm = dt.time.fromisoformat(text)
    except ValueError:
        abort(400, description=f"Waktu {text!r} tidak dikenal; tulis JJ:MM, misalnya 12:00 (atau kosongkan).")
    at = db.now()
    until = dt.datetime.combine(at.date(), hhmm.replace(second=0, microsecond=0), at.tzinfo)
    if until <= at:
        abort(400, description=f"Waktu {text} sudah lewat (sekarang {at:%H:%M}); isi waktu yang akan datang.")
    return until.isoformat(timespec="seconds")


def _put(value: dict) -> None:
    db.store().put("announcement", value)


def _announcement() -> dict | None:
    """What is stored, checked like the lobby screen checks it: a bad item is repaired, never a 500."""
    return read_announcement(current_app.config["LOBBY"].agent_data_dir)


def _quotas() -> list[dict]:
    kiosk = current_app.config["KIOSK"]
    today = db.now().date()
    if not db.ledger_made():
        return [{"code": s.code, "name": s.name, "quota": None, "taken": None} for s in kiosk.services]
    ledger = db.ledger()
    return [{"code": s.code, "name": s.name, "quota": ledger.quota(s, today), "taken": ledger.taken(s.code, today)}
            for s in kiosk.services]
