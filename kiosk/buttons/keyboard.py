"""Service buttons typed on a keyboard or piped into stdin.

For the demo on a laptop, and for tests that drive the whole kiosk as a
subprocess: ``printf 'aab' | kiosk`` is three presses, then EOF ends the run.
"""

import logging
import sys
import threading
from collections.abc import Sequence

from kiosk.buttons import ButtonSource, ButtonSpec, LedMode
from kiosk.buttons.errors import ButtonError

log = logging.getLogger("kiosk.buttons")


class KeyboardButtons(ButtonSource):
    """Each character of each line read from ``stream`` (default stdin) is one press.

    Keys match service codes case-insensitively; whitespace is ignored; any
    other key is logged and counted in ``unknown_keys``. LED modes are kept
    in ``leds`` because there is no lamp to show them.

    The reader is a daemon thread: close() cannot interrupt a blocking read,
    so it may linger until the next line or EOF, but it reports nothing more.
    """

    def __init__(self, buttons: Sequence[ButtonSpec], stream=None):
        super().__init__(buttons)
        self._keys = _keymap(self.services)
        self.stream = stream
        self.leds = {service: LedMode.OFF for service in self.services}
        self.unknown_keys = 0
        self._thread = None

    def _start(self, on_press, on_end) -> None:
        # stdin is looked up now, not at import, so a swapped sys.stdin is honoured.
        stream = sys.stdin if self.stream is None else self.stream
        self._thread = threading.Thread(
            target=self._read, args=(stream, on_press, on_end), name="kiosk-keyboard", daemon=True)
        self._thread.start()

    def _read(self, stream, on_press, on_end) -> None:
        try:
            while line := stream.readline():
                self._line(line, on_press)
        except (OSError, ValueError) as exc:  # stdin closed under us: no more presses either way
            log.warning("keyboard input failed (%s); no more presses will be read", exc)
        if on_end is not None and not self.closed:
            self._end(on_end)

    def _line(self, line: str, on_press) -> None:
        for key in line:
            if key.isspace():
                continue
            service = self._keys.get(key.casefold())
            if service is None:
                self._unknown(key)
            else:
                self._report(on_press, service)

    def _unknown(self, key: str) -> None:
        self.unknown_keys += 1
        log.warning("key %r is not a service button; press one of: %s", key, ", ".join(self.services))

    def _end(self, on_end) -> None:
        try:
            on_end()
        except Exception:
            log.exception("end-of-input handler failed")

    def _set_led(self, service: str, mode: LedMode) -> None:
        if self.leds[service] is not mode:
            log.debug("LED %s: %s", service, mode.value)
            self.leds[service] = mode


def _keymap(services) -> dict[str, str]:
    """Map each typed key (case-folded) to its service code."""
    keys = {}
    for service in services:
        if len(service) != 1:
            raise ButtonError(f"service {service!r} cannot be typed as one key; "
                              "use one-letter codes such as 'A' with the keyboard backend")
        key = service.casefold()
        if key in keys:
            raise ButtonError(f"services {keys[key]!r} and {service!r} are the same key "
                              "(keys ignore case); give them different letters")
        keys[key] = service
    return keys
