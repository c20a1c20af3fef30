"""Signed ticket ids for the QR code, so staff can tell a real ticket from a broker's copy.

The key is made on the kiosk at first start and never printed or logged.
"""

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets

from common.durable import create_once, remove_orphans
from kiosk.errors import KioskError

KEY_FILE = "ticket.key"
KEY_BYTES = 32
PREFIX = "ANT1"
SIG_BYTES = 10  # 80 bits: forging one ticket takes ~2**79 tries against a kiosk that answers nothing


class SignatureError(KioskError):
    """A QR payload is malformed or its signature does not match."""


def load_or_create_key(data_dir: str) -> bytes:
    path = os.path.join(data_dir, KEY_FILE)
    remove_orphans(path)  # what a power cut during a first start left
    try:
        with open(path, "rb") as f:
            key = f.read()
    except FileNotFoundError:
        return _create_key(path)
    if len(key) != KEY_BYTES:
        raise KioskError(f"ticket key {path} has {len(key)} bytes, expected {KEY_BYTES}; "
                         "restore it from backup (removing it invalidates printed tickets)")
    return key


def _create_key(path: str) -> bytes:
    # On the disk, name and all, before the first ticket is signed with it: a key lost in a
    # power cut would be remade and every ticket already printed would then read as forged.
    key = secrets.token_bytes(KEY_BYTES)
    if create_once(path, key, mode=0o600):
        return key
    return load_or_create_key(os.path.dirname(path))  # another process made it first: theirs counts


def ticket_payload(key: bytes, office_id: str, kiosk_id: str, service: str, day: dt.date, number: int) -> str:
    body = f"{PREFIX}:{office_id}:{kiosk_id}:{service}:{day:%Y%m%d}:{number}".upper()
    return f"{body}:{_sign(key, body)}"


def verify_payload(key: bytes, payload: str) -> dict:
    """Return the ticket fields of a genuine payload; raise SignatureError naming what is wrong."""
    body, _, sig = payload.strip().rpartition(":")
    parts = body.split(":")
    if len(parts) != 6 or parts[0] != PREFIX:
        raise SignatureError(f"{payload!r} is not an Antrean ticket code")
    if not hmac.compare_digest(sig, _sign(key, body)):
        raise SignatureError(f"ticket code {payload!r} has a wrong signature: forged or from another kiosk")
    _, office, kiosk, service, day, number = parts
    return {"office_id": office.lower(), "kiosk_id": kiosk.lower(), "service": service,
            "service_day": dt.datetime.strptime(day, "%Y%m%d").date(), "number": int(number)}


def _sign(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:SIG_BYTES]
    return base64.b32encode(digest).decode().rstrip("=")
