"""edge_agent.schema without a broker: what a receiver gets from a message, and what it refuses.

tests/test_agent.py parses every message a real agent sends on a real Mosquitto with it; these are
the rules around that: bad values named, unknown fields ignored, newer versions refused."""

import json
import subprocess
import sys

import pytest

from edge_agent import schema
from edge_agent.errors import SchemaError
from edge_agent.network import DOWN, STATES, office_verdict
from edge_agent.outbox import KINDS
from edge_agent.probes import Target

BASE = "antrean/serang-kota/kiosk-1"
ENVELOPE = {"boot_id": "4b941d3cc090a241", "seq": 3, "at": "2026-11-26T09:01:52.046+00:00",
            "kiosk_id": "kiosk-1", "office_id": "serang-kota"}
OUTAGE = {"target": "central-ktp", "from": "up", "to": "down", "reason": "3 failed rounds in a row",
          "changed_at": "2026-11-26T09:01:52Z",
          "cause": {"code": "central", "text": "central network", "targets": ["central-ktp"]},
          "started_at": "2026-11-26T09:01:52Z", "stopped_services": ["A"]}


def payload(body: dict, historical: bool = False, **envelope) -> bytes:
    """As the agent sends it: ``historical`` comes after the body."""
    return schema.dump({**ENVELOPE, **envelope, **body, **({"historical": True} if historical else {})})


def test_an_event_reads_into_its_dataclass_and_back_to_the_same_bytes():
    sent = payload(OUTAGE, historical=True)
    message = schema.parse(f"{BASE}/events/outage_started", sent)
    assert (message.office_id, message.kiosk_id) == ("serang-kota", "kiosk-1")
    assert message.envelope.historical and message.envelope.seq == 3
    event = message.body
    assert isinstance(event, schema.OutageStarted)
    assert (event.from_state, event.to_state, event.cause.code) == (schema.TargetState.UP, schema.TargetState.DOWN,
                                                                    schema.CauseCode.CENTRAL)
    assert event.stopped_services == ("A",)
    assert schema.dump(schema.wire_dict(message.envelope, event)) == sent


@pytest.mark.parametrize("change, named", [
    ({"to": "sideways"}, "events/outage_started.to: 'sideways' is not one of unknown, up, degraded, down, maintenance"),
    ({"stopped_services": "A"}, "events/outage_started.stopped_services must be a JSON array, got 'A'"),
    ({"cause": {"code": "central", "text": 7, "targets": []}},
     "events/outage_started.cause.text must be a string, got 7"),
    ({"target": None}, "events/outage_started.target must be a string, got None"),
])
def test_a_bad_value_is_refused_with_its_place_and_value(change, named):
    with pytest.raises(SchemaError) as refused:
        schema.parse(f"{BASE}/events/outage_started", payload({**OUTAGE, **change}))
    assert str(refused.value) == named


def test_a_missing_field_and_a_bad_envelope_are_named():
    with pytest.raises(SchemaError, match="field 'reason' is missing"):
        schema.parse(f"{BASE}/events/outage_started", payload({k: v for k, v in OUTAGE.items() if k != "reason"}))
    with pytest.raises(SchemaError, match=r"envelope.seq must be a whole number, got True"):
        schema.parse(f"{BASE}/events/outage_started", payload(OUTAGE, seq=True))
    with pytest.raises(SchemaError, match="not UTF-8 JSON"):
        schema.parse(f"{BASE}/health", b"{not json")
    with pytest.raises(SchemaError, match="'busy' is not one of online, offline"):
        schema.parse(f"{BASE}/status", b"busy")
    with pytest.raises(SchemaError, match="none the agent publishes"):
        schema.parse(f"{BASE}/cmd/set_quota", b"{}")


def test_within_a_version_receivers_ignore_new_fields_and_read_new_event_kinds():
    newer = schema.parse(f"{BASE}/events/outage_started", payload({**OUTAGE, "region": "banten"}))
    assert newer.body == schema.parse(f"{BASE}/events/outage_started", payload(OUTAGE)).body
    unknown = schema.parse(f"{BASE}/events/printer_jam", payload({"where": "cutter"}))
    assert unknown.body == schema.UnknownEvent("printer_jam", {"where": "cutter"})


def test_a_newer_schema_version_is_refused_so_a_receiver_knows_to_update():
    with pytest.raises(SchemaError, match="schema_version 2 is newer than this reader's 1; update edge_agent.schema"):
        schema.parse(f"{BASE}/events/outage_started", payload(OUTAGE, schema_version=2))


def test_quota_exhausted_reads_by_its_scope():
    day = {"quota": 150, "service": "A", "service_day": "2026-11-23", "kiosk_event_id": 5,
           "kiosk_at": "2026-11-23T11:42:07+07:00", "scope": "day"}
    horizon = {"last_day": "2026-12-07", "service": "A", "kiosk_event_id": 912,
               "kiosk_at": "2026-11-23T12:10:33+07:00", "scope": "horizon"}
    assert isinstance(schema.event_from_dict("quota_exhausted", day), schema.DayFull)
    assert schema.event_from_dict("quota_exhausted", horizon).to_dict() == horizon
    with pytest.raises(SchemaError, match="scope: 'week' is not one of day, horizon"):
        schema.event_from_dict("quota_exhausted", {**day, "scope": "week"})


def test_an_announcement_or_none():
    shown = {"text": "Pemeliharaan", "severity": "warning", "announced_at": "2026-11-23T05:50:00+07:00",
             "until": "2026-11-23T12:00:00+07:00", "maintenance_targets": ["central-ktp"]}
    assert schema.Announcement.from_dict(shown).to_dict() == shown
    assert list(schema.Announcement.from_dict(shown).to_dict()) == list(shown)
    assert schema.Announcement.from_dict({"active": False}) == schema.Announcement.none()
    assert schema.Announcement.none().to_dict() == {"active": False}
    with pytest.raises(SchemaError, match="severity: 'loud' is not one of info, warning, critical"):
        schema.Announcement.from_dict({**shown, "severity": "loud"})


def test_a_reply_has_a_result_or_an_error():
    answer = {"ok": False, "verb": "set_quota", "error": {"code": "bad_value", "message": "set_quota needs 'date'"}}
    assert schema.Reply.from_dict(answer).to_dict() == answer
    with pytest.raises(SchemaError, match="ok True needs a result"):
        schema.Reply(ok=True, verb="resend")


def test_ints_stay_ints_and_floats_stay_floats():
    reading = {"ok": True, "at": "2026-11-26T09:01:49Z", "detail": "5/5 replies", "rtt_ms": 1, "loss": 0.0,
               "jitter_ms": None, "cert_days_left": None, "inconclusive": False}
    assert schema.dump(schema.ProbeReading.from_dict(reading).to_dict()) == schema.dump(reading)


def test_the_agents_states_are_the_schemas_enums_with_the_same_strings():
    assert STATES == ("unknown", "up", "degraded", "down", "maintenance") and DOWN is schema.TargetState.DOWN
    assert KINDS == ("event", "change", "sample")
    verdict = office_verdict([Target(name="gw", kind="tcp", host="10.0.0.1", port=53, role="gateway")], {"gw": "down"})
    assert (verdict["status"], verdict["cause"]["code"]) == ("outage", "local_line")
    assert json.dumps(verdict["status"]) == '"outage"' and f"{verdict['status']}" == "outage"
    assert isinstance(verdict["status"], schema.OfficeStatus)


def test_a_receiver_imports_the_schema_without_paho_or_the_kiosk():
    code = ("import sys; from edge_agent import schema; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('paho', 'kiosk', 'lobby', 'common')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_schemas_copies_of_other_vocabularies_match_their_owners():
    """The schema may not import the kiosk, so it spells the kiosk's liveness states again; the agent's
    config spells the probe kinds and roles again. Here they are held together."""
    from edge_agent import config
    from edge_agent.probes import ProbeKind
    from kiosk.seam import Liveness

    assert [s.value for s in schema.ProcessState] == [s.value for s in Liveness]
    assert tuple(config.ROLES) == tuple(schema.TargetRole)
    assert tuple(config.KINDS) == tuple(ProbeKind)
