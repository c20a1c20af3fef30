"""``/verify``: is this ticket's QR code genuine, from this kiosk, in the ledger and not void?

Staff scan the QR with a phone and paste (or open) the code. The kiosk's
key (``<data_dir>/ticket.key``) is only read here, never created.
"""

import os
import sqlite3

from flask import Blueprint, current_app, render_template, request

from kiosk.seam import KEY_BYTES, KEY_FILE, KioskError, SignatureError, TicketNotFound, TicketStatus, verify_payload
from lobby import db, texts

bp = Blueprint("verify", __name__)
MAX_CODE_CHARS = 200


@bp.get("/verify")
def verify_page():
    code = request.args.get("code", "").strip()
    if not code:
        return render_template("verify.html", code="", result=None)
    result = check_code(current_app.config["KIOSK"], code)
    return render_template("verify.html", code=code, result=result), 200 if result["genuine"] else 422


def check_code(kiosk, code: str) -> dict:
    """``{"genuine": bool, "verdict": ..., "title": ..., "detail": ...}`` for one QR payload."""
    if len(code) > MAX_CODE_CHARS:
        return _bad("forged", f"kode terlalu panjang ({len(code)} karakter); kode tiket Antrean di bawah "
                              f"{MAX_CODE_CHARS} karakter")
    if not code.isascii() or not code.isprintable():
        # A genuine code is printable ASCII; anything else cannot even be compared with a signature.
        odd = next(c for c in code if not (c.isascii() and c.isprintable()))
        return _bad("forged", f"Kode berisi karakter {ascii(odd)} yang tidak ada di kode tiket Antrean "
                              f"(hanya huruf, angka dan titik dua).")
    key, problem = _key(kiosk.data_dir)
    if key is None:
        return {"genuine": False, "verdict": "unavailable", "title": "TIDAK DAPAT DIPERIKSA", "detail": problem}
    try:
        fields = verify_payload(key, code)
    except SignatureError as exc:
        return _bad("forged", f"Tanda tangan tidak cocok dengan kunci kios ini. ({exc})")
    except ValueError:
        return _bad("forged", "Kode tidak dapat dibaca sebagai tiket Antrean.")
    if (fields["office_id"], fields["kiosk_id"]) != (kiosk.office_id, kiosk.id):
        return _bad("other", f"Tiket dari {fields['office_id']}/{fields['kiosk_id']}, bukan dari "
                             f"{kiosk.office_id}/{kiosk.id}.")
    return _ledger_check(kiosk, fields)


def _ledger_check(kiosk, fields: dict) -> dict:
    ticket = {"service": fields["service"], "service_name": _service_name(kiosk, fields["service"]),
              "day": texts.day_id(fields["service_day"]), "number": fields["number"],
              "label": f"{fields['service']}-{fields['number']:03d}"}
    try:
        status = db.ledger().find(fields["service"], fields["service_day"], fields["number"]).status
    except TicketNotFound:
        return {**_bad("missing", "Tanda tangan asli, tetapi tiket ini tidak ada di buku antrean kios. "
                                  "Laporkan ke teknisi."), "ticket": ticket}
    except (KioskError, sqlite3.Error) as exc:
        return {"genuine": False, "verdict": "unavailable", "title": "TIDAK DAPAT DIPERIKSA",
                "detail": f"Buku antrean tidak dapat dibaca: {exc}", "ticket": ticket}
    if status == TicketStatus.VOID:
        return {**_bad("void", "Tiket ini asli tetapi sudah dibatalkan (void)."), "ticket": ticket}
    return {"genuine": True, "verdict": "genuine", "title": "ASLI / GENUINE",
            "detail": "Dikeluarkan oleh kios ini dan tercatat di buku antrean.", "ticket": ticket}


def _bad(verdict: str, detail: str) -> dict:
    titles = {"forged": "PALSU / BUKAN DARI KIOS INI", "other": "BUKAN DARI KIOS INI",
              "missing": "TIDAK TERCATAT", "void": "DIBATALKAN / VOID"}
    return {"genuine": False, "verdict": verdict, "title": titles[verdict], "detail": detail}


def _key(data_dir: str) -> tuple[bytes | None, str | None]:
    path = os.path.join(data_dir, KEY_FILE)
    try:
        with open(path, "rb") as f:
            key = f.read()
    except OSError as exc:
        return None, f"Kunci tiket {path} tidak dapat dibaca ({exc.strerror}); jalankan kios sekali atau " \
                     "periksa izin berkas."
    if len(key) != KEY_BYTES:
        return None, f"Kunci tiket {path} rusak ({len(key)} byte, seharusnya {KEY_BYTES}); pulihkan dari cadangan."
    return key, None


def _service_name(kiosk, code: str) -> str:
    try:
        return kiosk.service(code).name
    except KeyError:
        return f"layanan {code} (tidak dikonfigurasi lagi)"
