"""Signed ticket ids for the QR code, so staff can tell a real ticket from a broker's copy.

The key is made on the kiosk at first start and never printed or logged.
"""

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets

from kiosk.errors import KioskError

KEY_FILE = "ticket.key"
KEY_BYTES = 32
PREFIX = "ANT1"
SIG_BYTES = 10  # 80 bits: forging one ticket takes ~2**79 tries against a kiosk that answers nothing


class SignatureError(KioskError):
    """A QR payload is malformed or its signature does not match."""


def load_or_create_key(data_dir: str) -> bytes:
    path = os.path.join(data_dir, KEY_FILE)
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
    key = secrets.token_bytes(KEY_BYTES)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process won the race; then use theirs
    except FileExistsError:
        os.unlink(tmp)
        return load_or_create_key(os.path.dirname(path))
    os.unlink(tmp)
    return key


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
