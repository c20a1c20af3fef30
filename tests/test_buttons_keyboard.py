"""KeyboardButtons: presses typed or piped in, one per character."""

import io
import logging
import os
import threading

import pytest

from kiosk.buttons import ButtonError, ButtonSpec, LedMode, make_button_source
from kiosk.buttons.keyboard import KeyboardButtons

TIMEOUT = 5.0
SPECS = [ButtonSpec("A", "GPIO17"), ButtonSpec("B")]


class Run:
    """Starts a source and lets a test await its presses and its end."""

    def __init__(self, source):
        self.services = []
        self.ended = threading.Event()
        self.end_calls = 0
        self._changed = threading.Condition()
        source.start(self._press, self._end)

    def _press(self, service):
        with self._changed:
            self.services.append(service)
            self._changed.notify_all()

    def _end(self):
        self.end_calls += 1
        self.ended.set()

    def wait_for(self, n):
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.services) >= n, TIMEOUT), self.services
        return list(self.services)

    def wait_end(self):
        assert self.ended.wait(TIMEOUT), "on_end was not called"
        return list(self.services)


def test_each_key_is_one_press_in_order_case_insensitive():
    with KeyboardButtons(SPECS, stream=io.StringIO("aAb\n")) as src:
        assert Run(src).wait_end() == ["A", "A", "B"]


def test_whitespace_is_ignored_and_lines_accumulate():
    with KeyboardButtons(SPECS, stream=io.StringIO(" a \tb\n\nB")) as src:
        assert Run(src).wait_end() == ["A", "B", "B"]


def test_unknown_keys_are_counted_and_warned(caplog):
    caplog.set_level(logging.WARNING, logger="kiosk.buttons")
    with KeyboardButtons(SPECS, stream=io.StringIO("a?x b\n")) as src:
        assert Run(src).wait_end() == ["A", "B"]
        assert src.unknown_keys == 2
    assert "key '?' is not a service button; press one of: A, B" in caplog.text
    assert "key 'x'" in caplog.text


def test_eof_calls_on_end_once():
    with KeyboardButtons(SPECS, stream=io.StringIO("")) as src:
        run = Run(src)
        assert run.wait_end() == []
        assert run.end_calls == 1


def test_pipe_is_read_as_lines_arrive():
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "r") as reader, os.fdopen(write_fd, "w") as writer:
        with KeyboardButtons(SPECS, stream=reader) as src:
            run = Run(src)
            writer.write("a\n")
            writer.flush()
            assert run.wait_for(1) == ["A"]
            assert not run.ended.is_set()
            writer.write("b\n")
            writer.close()  # EOF for the reader
            assert run.wait_end() == ["A", "B"]


def test_default_stream_is_stdin_at_start(monkeypatch):
    src = make_button_source("keyboard", SPECS)
    monkeypatch.setattr("sys.stdin", io.StringIO("b\n"))
    with src:
        assert Run(src).wait_end() == ["B"]


def test_led_modes_are_kept_and_logged_on_change(caplog):
    caplog.set_level(logging.DEBUG, logger="kiosk.buttons")
    with KeyboardButtons(SPECS, stream=io.StringIO("")) as src:
        assert src.leds == {"A": LedMode.OFF, "B": LedMode.OFF}
        src.set_led("A", LedMode.SLOW)
        src.set_led("A", "slow")
        assert src.leds["A"] is LedMode.SLOW
    assert caplog.text.count("LED A: slow") == 1


def test_failing_handler_does_not_stop_the_reader(caplog):
    seen, ended = [], threading.Event()

    def handler(service):
        seen.append(service)
        raise RuntimeError("ledger full")

    with KeyboardButtons(SPECS, stream=io.StringIO("ab\n")) as src:
        src.start(handler, ended.set)
        assert ended.wait(TIMEOUT)
    assert seen == ["A", "B"]
    assert "press handler failed for service 'A'" in caplog.text


def test_service_codes_must_be_single_distinct_keys():
    with pytest.raises(ButtonError, match="'AB' cannot be typed as one key"):
        KeyboardButtons([ButtonSpec("AB")])
    with pytest.raises(ButtonError, match="'a' and 'A' are the same key"):
        KeyboardButtons([ButtonSpec("a"), ButtonSpec("A")])


def test_specs_are_checked():
    with pytest.raises(ButtonError, match="'A' is listed twice"):
        KeyboardButtons([ButtonSpec("A"), ButtonSpec("A")])
    with pytest.raises(ButtonError, match="no buttons given"):
        KeyboardButtons([])
    with pytest.raises(ButtonError, match="service code ' A' is invalid"):
        ButtonSpec(" A")
