"""Commands: strict validation before any handler runs, and MQTT v5 request/response through a real broker."""

import json

import pytest
from broker import Broker, Requester, make_link

from edge_agent.commands import MAX_PAYLOAD_BYTES, CommandDispatcher, validate
from edge_agent.errors import CommandError

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


def raw(value) -> bytes:
    return json.dumps(value).encode()


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
    answer = CommandDispatcher(recorder.handlers()).handle(verb, payload)
    assert answer["ok"] is False and answer["verb"] == verb
    assert answer["error"]["code"] == code, answer
    assert len(answer["error"]["message"]) > 20
    assert recorder.calls == []


@pytest.mark.parametrize("verb", sorted(VALID))
def test_valid_request_calls_its_handler_once(verb):
    recorder = Recorder()
    answer = CommandDispatcher(recorder.handlers()).handle(verb, raw(VALID[verb]))
    assert answer == {"ok": True, "verb": verb, "result": {"handled": verb}}
    assert recorder.calls == [(verb, VALID[verb])]


def test_optional_keys_may_be_left_out_and_quota_zero_is_allowed():
    assert validate("announce", raw({"text": "hi", "severity": "critical"})) == {"text": "hi", "severity": "critical"}
    assert validate("set_quota", raw({"service": "Z", "date": "2026-12-01", "quota": 0}))["quota"] == 0
    assert validate("announce", raw({"text": "x" * 280, "severity": "info", "until": "2026-12-01T05:00:00Z"}))


def test_messages_name_the_value_and_the_fix():
    with pytest.raises(CommandError) as exc:
        validate("set_quota", raw({"service": "A", "date": "2026-12-01", "quota": -5}))
    assert "-5" in str(exc.value) and "0 or more" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        validate("announce", raw({"text": "hi", "severity": "info", "until": "2026-12-01T12:00"}))
    assert "2026-12-01T12:00" in str(exc.value) and "+07:00" in str(exc.value)
    with pytest.raises(CommandError) as exc:
        validate("reboot", b"{}")
    assert "reboot" in str(exc.value) and "set_quota" in str(exc.value)


def test_handler_errors_become_answers():
    recorder = Recorder(fail={"set_quota": CommandError("quota_below_taken", "quota 3 is below the 7 taken"),
                              "test_print": RuntimeError("printer on fire")})
    dispatcher = CommandDispatcher(recorder.handlers())
    answer = dispatcher.handle("set_quota", raw(VALID["set_quota"]))
    assert answer["error"] == {"code": "quota_below_taken", "message": "quota 3 is below the 7 taken"}
    answer = dispatcher.handle("test_print", b"{}")
    assert answer["error"]["code"] == "internal" and "printer on fire" in answer["error"]["message"]


def test_handler_results_must_be_json_objects():
    dispatcher = CommandDispatcher({"resend": lambda args: ["not", "a", "dict"],
                                    "test_print": lambda args: {"when": object()}})
    assert dispatcher.handle("resend", b"{}")["error"]["code"] == "internal"
    assert dispatcher.handle("test_print", b"{}")["error"]["code"] == "internal"


def test_a_verb_without_handler_is_unknown_here():
    answer = CommandDispatcher({"resend": lambda args: {}}).handle("test_print", b"{}")
    assert answer["error"]["code"] == "unknown_verb" and "resend" in answer["error"]["message"]


def test_registering_a_verb_without_schema_raises_at_once():
    with pytest.raises(ValueError, match="reboot"):
        CommandDispatcher({"reboot": lambda args: {}})
    with pytest.raises(TypeError):
        CommandDispatcher({"resend": "not callable"})


# ------------------------------------------------------------------ through the broker

@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def kiosk(broker, tmp_path):
    recorder = Recorder(fail={"set_quota": CommandError("quota_below_taken", "quota 1 is below the 7 taken")})
    link = make_link(broker, tmp_path, handlers=recorder.handlers())
    link.start()
    assert link.wait_connected(10)
    yield link, recorder
    link.stop()


@pytest.fixture
def technician(broker):
    requester = Requester(broker)
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
