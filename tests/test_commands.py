"""Commands: strict validation before any handler runs, and MQTT v5 request/response through a real broker."""

import datetime as dt
import json

import pytest
from support.broker import Requester, make_link

from edge_agent.commands import MAX_PAYLOAD_BYTES, MAX_QUOTA, MAX_REQUEST_AGE_S, CommandDispatcher, validate
from edge_agent.errors import CommandError

# The kiosk's clock in the validation tests; requests say they were sent then.
NOW = dt.datetime.fromisoformat("2026-11-23T09:00:00+07:00")

VALID = {
    "announce": {"text": "Layanan e-KTP ditutup pukul 12:00", "severity": "warning",
                 "until": "2026-12-01T12:00:00+07:00", "maintenance_targets": ["gateway", "dukcapil-pusat"]},
    "clear_announcement": {},
    "test_print": {},
    "set_quota": {"service": "A", "date": "2026-12-01", "quota": 120},
    "resend": {},
}


class Recorder:
    """Stub handlers that record their calls."""

    def __init__(self, fail: dict | None = None):
        self.calls: list[tuple[str, dict]] = []
        self._fail = fail or {}

    def handlers(self) -> dict:
        return {verb: self._make(verb) for verb in VALID}

    def _make(self, verb):
        def handle(args):
            self.calls.append((verb, args))
            if verb in self._fail:
                raise self._fail[verb]
            return {"handled": verb}
        return handle


def raw(value, sent_at: dt.datetime | None = NOW) -> bytes:
    """A request as a technician sends it: ``sent_at`` first (None leaves it out)."""
    stamped = value if sent_at is None else {"sent_at": sent_at.isoformat(), **value}
    return json.dumps(stamped).encode()


def dispatcher(handlers) -> CommandDispatcher:
    return CommandDispatcher(handlers, clock=NOW.timestamp)


def nested(depth: int) -> bytes:
    return b'{"text": ' + b"[" * depth + b"]" * depth + b', "severity": "info"}'


# ------------------------------------------------------------------ validation (no broker)

INVALID = [
    ("announce", b"{not json", "bad_json"),
    ("announce", b"", "bad_json"),
    ("announce", b"\xff\xfe", "bad_json"),
    ("announce", b'{"text": "a", "text": "b", "severity": "info"}', "bad_json"),
    ("set_quota", b'{"service": "A", "date": "2026-12-01", "quota": NaN}', "bad_json"),
    ("announce", b"[1, 2]", "not_an_object"),
    ("clear_announcement", b'"clear"', "not_an_object"),
    ("announce", raw({"text": "x" * (MAX_PAYLOAD_BYTES + 1), "severity": "info"}), "too_large"),
    ("reboot", b"{}", "unknown_verb"),
    ("announce/extra", b"{}", "unknown_verb"),
    ("announce", raw({"text": "hi", "severity": "info", "colour": "red"}), "unknown_key"),
    ("test_print", raw({"copies": 2}), "unknown_key"),
    ("announce", raw({"text": 5, "severity": "info"}), "bad_type"),
    ("announce", raw({"text": "hi", "severity": "info", "maintenance_targets": "gateway"}), "bad_type"),
    ("announce", raw({"text": "hi", "severity": "info", "maintenance_targets": ["ok", 3]}), "bad_type"),
    ("set_quota", raw({"service": "A", "date": "2026-12-01", "quota": "120"}), "bad_type"),
    ("set_quota", raw({"service": "A", "date": "2026-12-01", "quota": 12.5}), "bad_type"),
    ("set_quota", raw({"service": "A", "date": "2026-12-01", "quota": True}), "bad_type"),
    ("set_quota", raw({"service": "A", "date": "2026-12-01", "quota": None}), "bad_type"),
    ("announce", raw({"text": "", "severity": "info"}), "bad_value"),
    ("announce", raw({"text": "x" * 281, "severity": "info"}), "bad_value"),
    ("announce", raw({"text": "hi", "severity": "urgent"}), "bad_value"),
    ("announce", raw({"text": "hi"}), "bad_value"),  # severity missing
    ("announce", raw({"text": "hi", "severity": "info", "until": "2026-12-01T12:00"}), "bad_value"),
    ("announce", raw({"text": "hi", "severity": "info", "until": "besok"}), "bad_value"),
    ("announce", raw({"text": "hi", "severity": "info", "maintenance_targets": [""]}), "bad_value"),
    # nesting deeper than the parser goes: once no answer at all
    ("announce", nested(1000), "bad_json"),
    ("announce", b"[" * 2000 + b"]" * 2000, "bad_json"),
    # an end in year 9999 made the lobby answer 500 until cleared; one in the past shows nothing
    ("announce", raw({"text": "hi", "severity": "info", "until": "9999-12-31T23:59:59+07:00"}), "bad_value"),
    ("announce", raw({"text": "hi", "severity": "info", "until": "2026-12-25T09:00:00+07:00"}), "bad_value"),
    ("announce", raw({"text": "hi", "severity": "info", "until": "2026-11-23T08:59:00+07:00"}), "bad_value"),
    # a lone surrogate has no UTF-8 form: once stored and shown, yet answered "internal"
    ("announce", b'{"sent_at": "2026-11-23T09:00:00+07:00", "text": "Tutup \\ud800", "severity": "info"}',
     "bad_value"),
    ("announce", raw({"text": "Tutup\x07", "severity": "info"}), "bad_value"),
    ("announce", raw({"text": "Tutup\nhari ini", "severity": "info"}), "bad_value"),
    ("announce", raw({"text": "\u202eTutup", "severity": "info"}), "bad_value"),
    ("announce", raw({"text": " \t ", "severity": "info"}), "bad_value"),
    ("announce", raw({"text": "\u3000\u00a0", "severity": "info"}), "bad_value"),
    ("announce", raw({"text": "hi", "severity": "info", "until": "2026-11-24T09:00:00+07:00",
                      "maintenance_targets": ["Central KTP"]}), "bad_value"),
    ("announce", raw({"text": "hi", "severity": "info", "until": "2026-11-24T09:00:00+07:00",
                      "maintenance_targets": ["gateway", "gateway"]}), "bad_value"),
    ("set_quota", raw({"service": "A", "date": "2026-12-01", "quota": 2 ** 63}), "bad_value"),
    ("set_quota", raw({"service": "A", "date": "2026-12-01", "quota": MAX_QUOTA + 1}), "bad_value"),
    # every request says when it was sent, and is run only while fresh
    ("resend", raw({}, sent_at=None), "bad_value"),
    ("resend", b'{"sent_at": "2026-11-23T09:00:00"}', "bad_value"),
    ("resend", b'{"sent_at": 1795399200}', "bad_type"),
    ("resend", raw({}, sent_at=NOW - dt.timedelta(seconds=MAX_REQUEST_AGE_S + 1)), "stale"),
    ("resend", raw({}, sent_at=NOW + dt.timedelta(seconds=MAX_REQUEST_AGE_S + 1)), "stale"),
    ("set_quota", raw({"service": "A", "date": "2026-12-01", "quota": 1}, sent_at=NOW - dt.timedelta(days=1)),
     "stale"),
    ("set_quota", raw({"service": "a", "date": "2026-12-01", "quota": 1}), "bad_value"),
    ("set_quota", raw({"service": "AB", "date": "2026-12-01", "quota": 1}), "bad_value"),
    ("set_quota", raw({"service": "A", "date": "01-12-2026", "quota": 1}), "bad_value"),
    ("set_quota", raw({"service": "A", "date": "2026-02-30", "quota": 1}), "bad_value"),
    ("set_quota", raw({"service": "A", "date": "2026-12-01", "quota": -1}), "bad_value"),
    ("set_quota", raw({"service": "A", "quota": 1}), "bad_value"),  # date missing
]


@pytest.mark.parametrize("verb, payload, code", INVALID)
def test_invalid_request_is_refused_and_handler_not_called(verb, payload, code):
    recorder = Recorder()
    answer = dispatcher(recorder.handlers()).handle(verb, payload)
    assert answer["ok"] is False and answer["verb"] == verb
    assert answer["error"]["code"] == code, answer
    assert len(answer["error"]["message"]) > 20
    assert recorder.calls == []


@pytest.mark.parametrize("verb", sorted(VALID))
def test_valid_request_calls_its_handler_once(verb):
    recorder = Recorder()
    answer = dispatcher(recorder.handlers()).handle(verb, raw(VALID[verb]))
    assert answer == {"ok": True, "verb": verb, "result": {"handled": verb}}
    assert recorder.calls == [(verb, VALID[verb])]


def test_optional_keys_may_be_left_out_and_quota_zero_is_allowed():
    assert validate("announce", raw({"text": "hi", "severity": "critical"}), NOW) == {"text": "hi",
                                                                                      "severity": "critical"}
    assert validate("set_quota", raw({"service": "Z", "date": "2026-12-01", "quota": 0}), NOW)["quota"] == 0
    assert validate("set_quota", raw({"service": "Z", "date": "2026-12-01", "quota": MAX_QUOTA}), NOW)
    assert validate("announce", raw({"text": "x" * 280, "severity": "info", "until": "2026-12-01T05:00:00Z"}), NOW)
    # a request a few minutes old, or from a clock a little ahead, is fine
    assert validate("resend", raw({}, sent_at=NOW - dt.timedelta(seconds=MAX_REQUEST_AGE_S - 1)), NOW) == {}
    assert validate("resend", raw({}, sent_at=NOW + dt.timedelta(seconds=60)), NOW) == {}
    text = "Layanan e-KTP ditutup. Mohon maaf 🙏 — pukul 12:00"
    assert validate("announce", raw({"text": text, "severity": "info"}), NOW)["text"] == text


def test_messages_name_the_value_and_the_fix():
    with pytest.raises(CommandError) as exc:
        validate("set_quota", raw({"service": "A", "date": "2026-12-01", "quota": -5}), NOW)
    assert "-5" in str(exc.value) and f"0 to {MAX_QUOTA}" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        validate("announce", raw({"text": "hi", "severity": "info", "until": "2026-12-01T12:00"}), NOW)
    assert "2026-12-01T12:00" in str(exc.value) and "+07:00" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        validate("reboot", b"{}", NOW)
    assert "reboot" in str(exc.value) and "set_quota" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        validate("announce", raw({"text": "hi", "severity": "info", "until": "9999-12-31T23:59:59+07:00"}), NOW)
    assert "9999-12-31" in str(exc.value) and "31 days" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        validate("announce", raw({"text": "Tutup\x07", "severity": "info"}), NOW)
    assert "U+0007" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        validate("resend", raw({}, sent_at=NOW - dt.timedelta(hours=1)), NOW)
    assert exc.value.code == "stale" and "3600 s older" in str(exc.value) and "2026-11-23T08:00" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        validate("resend", b"{}", NOW)
    assert "sent_at" in str(exc.value) and "+07:00" in str(exc.value)


def test_handler_errors_become_answers():
    recorder = Recorder(fail={"set_quota": CommandError("quota_below_taken", "quota 3 is below the 7 taken"),
                              "test_print": RuntimeError("printer on fire")})
    commands = dispatcher(recorder.handlers())
    answer = commands.handle("set_quota", raw(VALID["set_quota"]))
    assert answer["error"] == {"code": "quota_below_taken", "message": "quota 3 is below the 7 taken"}
    answer = commands.handle("test_print", raw({}))
    assert answer["error"]["code"] == "internal" and "printer on fire" in answer["error"]["message"]


def test_handler_results_must_be_json_objects():
    commands = dispatcher({"resend": lambda args: ["not", "a", "dict"], "test_print": lambda args: {"when": object()}})
    assert commands.handle("resend", raw({}))["error"]["code"] == "internal"
    assert commands.handle("test_print", raw({}))["error"]["code"] == "internal"


def test_a_verb_without_handler_is_unknown_here():
    answer = dispatcher({"resend": lambda args: {}}).handle("test_print", raw({}))
    assert answer["error"]["code"] == "unknown_verb" and "resend" in answer["error"]["message"]


def test_registering_a_verb_without_schema_raises_at_once():
    with pytest.raises(ValueError, match="reboot"):
        CommandDispatcher({"reboot": lambda args: {}})
    with pytest.raises(TypeError):
        CommandDispatcher({"resend": "not callable"})


# ------------------------------------------------------------------ through the broker

@pytest.fixture
def kiosk(broker, tmp_path):
    recorder = Recorder(fail={"set_quota": CommandError("quota_below_taken", "quota 1 is below the 7 taken")})
    link = make_link(broker, tmp_path, dispatcher=dispatcher(recorder.handlers()))
    link.start()
    assert link.wait_connected(10)
    yield link, recorder
    link.stop()


@pytest.fixture
def technician(broker):
    requester = Requester(broker, clock=NOW.timestamp)
    yield requester
    requester.close()


def test_each_verb_is_answered_on_the_response_topic_with_its_correlation_data(kiosk, technician):
    link, recorder = kiosk
    seqs = []
    for verb in ("announce", "clear_announcement", "test_print", "resend"):
        correlation = technician.send(verb, VALID[verb])
        answer = technician.wait(correlation)
        assert answer["ok"] is True and answer["verb"] == verb and answer["result"] == {"handled": verb}
        assert answer["boot_id"] == link.boot_id and answer["kiosk_id"] == "kiosk-1"
        assert answer["office_id"] == "serang-kota" and answer["at"][-6] in "+-"
        seqs.append(answer["seq"])
    answer = technician.ask("set_quota", VALID["set_quota"])  # the stub refuses it with a CommandError
    assert answer["ok"] is False and answer["error"]["code"] == "quota_below_taken"
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert [verb for verb, _ in recorder.calls] == ["announce", "clear_announcement", "test_print", "resend",
                                                    "set_quota"]
    assert recorder.calls[0][1] == VALID["announce"]


@pytest.mark.parametrize("verb, payload, code", [
    ("announce", b"{oops", "bad_json"),
    ("announce", nested(1000), "bad_json"),  # once no answer at all
    ("set_quota", raw({"service": "A", "date": "2026-12-01", "quota": 2 ** 63}), "bad_value"),
    ("set_quota", raw({"service": "A", "date": "2026-12-01", "quota": "lots"}), "bad_type"),
    ("announce", raw({"text": "x" * 5000, "severity": "info"}), "too_large"),
    ("reboot", b"{}", "unknown_verb"),
    ("clear_announcement", raw({"all": True}), "unknown_key"),
])
def test_invalid_commands_over_mqtt_get_errors_and_run_nothing(kiosk, technician, verb, payload, code):
    link, recorder = kiosk
    answer = technician.ask(verb, payload)
    assert answer["ok"] is False and answer["error"]["code"] == code and answer["verb"] == verb
    assert recorder.calls == []


def test_command_without_a_usable_response_topic_is_not_run(kiosk, technician):
    link, recorder = kiosk
    technician.send("announce", VALID["announce"], response_topic=None)
    technician.send("announce", VALID["announce"], response_topic="antrean/serang-kota/kiosk-1/elsewhere")
    # Commands run in arrival order: once this one is answered, the two above have been refused.
    assert technician.ask("resend", {})["ok"] is True
    assert [verb for verb, _ in recorder.calls] == ["resend"]
    assert len(technician.answers) == 1  # only the resend was answered


def test_a_retained_request_is_refused_and_never_run(kiosk, technician):
    """A mistaken `mosquitto_pub -r` would run again at every reconnect; it is answered and not run."""
    link, recorder = kiosk
    answer = technician.wait(technician.send("resend", {}, retain=True))
    assert answer["ok"] is False and answer["error"]["code"] == "retained", answer
    assert "mosquitto_pub -r -n -t antrean/serang-kota/kiosk-1/cmd/resend" in answer["error"]["message"]
    assert technician.ask("clear_announcement", {})["ok"] is True  # commands run in order
    assert [verb for verb, _ in recorder.calls] == ["clear_announcement"]


def test_a_stale_request_over_mqtt_is_refused_and_not_run(kiosk, technician):
    link, recorder = kiosk
    old = (NOW - dt.timedelta(minutes=30)).isoformat()
    answer = technician.ask("resend", {"sent_at": old})
    assert answer["error"]["code"] == "stale" and old in answer["error"]["message"], answer
    assert recorder.calls == []
