import datetime as dt
import os
import stat

import pytest

from kiosk.signing import SignatureError, load_or_create_key, ticket_payload, verify_payload

DAY = dt.date(2026, 11, 23)


def test_key_made_once_private_and_stable(tmp_path):
    key = load_or_create_key(str(tmp_path))
    assert len(key) == 32 and load_or_create_key(str(tmp_path)) == key
    assert stat.S_IMODE(os.stat(tmp_path / "ticket.key").st_mode) == 0o600


def test_truncated_key_is_refused(tmp_path):
    (tmp_path / "ticket.key").write_bytes(b"short")
    with pytest.raises(Exception, match="has 5 bytes"):
        load_or_create_key(str(tmp_path))


def test_payload_round_trip(tmp_path):
    key = load_or_create_key(str(tmp_path))
    payload = ticket_payload(key, "serang-kota", "kiosk-1", "A", DAY, 7)
    assert payload.startswith("ANT1:SERANG-KOTA:KIOSK-1:A:20261123:7:")
    assert verify_payload(key, payload) == {"office_id": "serang-kota", "kiosk_id": "kiosk-1",
                                            "service": "A", "service_day": DAY, "number": 7}


@pytest.mark.parametrize("tamper", [
    lambda p: p.replace(":7:", ":8:"),
    lambda p: p.replace(":A:", ":B:"),
    lambda p: p[:-1] + ("A" if p[-1] != "A" else "B"),
    lambda p: "hello",
])
def test_tampered_payload_rejected(tmp_path, tamper):
    key = load_or_create_key(str(tmp_path))
    with pytest.raises(SignatureError):
        verify_payload(key, tamper(ticket_payload(key, "serang-kota", "kiosk-1", "A", DAY, 7)))


def test_other_kiosk_key_rejected(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    payload = ticket_payload(load_or_create_key(str(tmp_path / "a")), "o", "k", "A", DAY, 1)
    with pytest.raises(SignatureError, match="wrong signature"):
        verify_payload(load_or_create_key(str(tmp_path / "b")), payload)
