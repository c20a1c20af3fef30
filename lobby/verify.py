"""``/verify``: is this ticket's QR code genuine, from this kiosk, in the ledger and not void?

Staff scan the QR with a phone and paste (or open) the code. The kiosk's
key (``<data_dir>/ticket.key``) is only read here, never created.
"""

import enum
import os
import sqlite3

from flask import Blueprint, current_app, render_template, request

from kiosk.seam import KEY_BYTES, KEY_FILE, KioskError, SignatureError, TicketNotFound, TicketStatus, verify_payload
from lobby import db, texts

bp = Blueprint("verify", __name__)
MAX_CODE_CHARS = 200


class TicketCheck(enum.StrEnum):
    """What ``/verify`` found (``data-verdict`` on the page)."""
    GENUINE = "genuine"  # signed by this kiosk's key, in its ledger, not void
    FORGED = "forged"  # not a code this kiosk's key signed
    OTHER = "other"  # a genuine code of another office or kiosk
    MISSING = "missing"  # signed by this kiosk, yet not in its ledger
    VOID = "void"
    UNAVAILABLE = "unavailable"  # the key or the ledger cannot be read now: nothing was judged

    @property
    def title(self) -> str:
        return TITLES[self]


TITLES = {TicketCheck.GENUINE: "ASLI / GENUINE", TicketCheck.FORGED: "PALSU / BUKAN DARI KIOS INI",
          TicketCheck.OTHER: "BUKAN DARI KIOS INI", TicketCheck.MISSING: "TIDAK TERCATAT",
          TicketCheck.VOID: "DIBATALKAN / VOID", TicketCheck.UNAVAILABLE: "TIDAK DAPAT DIPERIKSA"}


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
        return _result(TicketCheck.FORGED, f"kode terlalu panjang ({len(code)} karakter); kode tiket Antrean di bawah "
                              f"{MAX_CODE_CHARS} karakter")
    if not code.isascii() or not code.isprintable():
        # A genuine code is printable ASCII; anything else cannot even be compared with a signature.
        odd = next(c for c in code if not (c.isascii() and c.isprintable()))
        return _result(TicketCheck.FORGED, f"Kode berisi karakter {ascii(odd)} yang tidak ada di kode tiket "
                                           f"Antrean (hanya huruf, angka dan titik dua).")
    key, problem = _key(kiosk.data_dir)
    if key is None:
        return _result(TicketCheck.UNAVAILABLE, problem)
    try:
        fields = verify_payload(key, code)
    except SignatureError as exc:
        return _result(TicketCheck.FORGED, f"Tanda tangan tidak cocok dengan kunci kios ini. ({exc})")
    except ValueError:
        return _result(TicketCheck.FORGED, "Kode tidak dapat dibaca sebagai tiket Antrean.")
    if (fields["office_id"], fields["kiosk_id"]) != (kiosk.office_id, kiosk.id):
        return _result(TicketCheck.OTHER, f"Tiket dari {fields['office_id']}/{fields['kiosk_id']}, bukan dari "
                                          f"{kiosk.office_id}/{kiosk.id}.")
    return _ledger_check(kiosk, fields)


def _ledger_check(kiosk, fields: dict) -> dict:
    ticket = {"service": fields["service"], "service_name": _service_name(kiosk, fields["service"]),
              "day": texts.day_id(fields["service_day"]), "number": fields["number"],
              "label": f"{fields['service']}-{fields['number']:03d}"}
    try:
        status = db.ledger().find(fields["service"], fields["service_day"], fields["number"]).status
    except TicketNotFound:
        return _result(TicketCheck.MISSING, "Tanda tangan asli, tetapi tiket ini tidak ada di buku antrean kios. "
                                            "Laporkan ke teknisi.", ticket)
    except (KioskError, sqlite3.Error) as exc:
        return _result(TicketCheck.UNAVAILABLE, f"Buku antrean tidak dapat dibaca: {exc}", ticket)
    if status == TicketStatus.VOID:
        return _result(TicketCheck.VOID, "Tiket ini asli tetapi sudah dibatalkan (void).", ticket)
    return _result(TicketCheck.GENUINE, "Dikeluarkan oleh kios ini dan tercatat di buku antrean.", ticket)


def _result(verdict: TicketCheck, detail: str, ticket: dict | None = None) -> dict:
    result = {"genuine": verdict is TicketCheck.GENUINE, "verdict": verdict, "title": verdict.title, "detail": detail}
    return result if ticket is None else {**result, "ticket": ticket}


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
