"""Service buttons and their LEDs behind one narrow seam: start, set_led, close.

A source only reports "service X was pressed"; whether that press becomes a
ticket is decided by :class:`kiosk.buttons.guard.PressGuard` and the ledger.
Backends are chosen by name and imported lazily so ``import kiosk.buttons``
never pulls in gpiozero and a laptop can run the demo on a keyboard. A new
source is one module whose class declares its [buttons] keys (``OPTIONS``),
plus its line in ``BACKENDS`` (docs/printers.md, "Adding a printer backend or a button source").
"""

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common.backends import Configurable, Registry
from kiosk.buttons.errors import ButtonError, UnknownBackend

log = logging.getLogger("kiosk.buttons")

BACKENDS = Registry("button", UnknownBackend, {
    "gpio": "kiosk.buttons.gpio:GpioButtons",
    "keyboard": "kiosk.buttons.keyboard:KeyboardButtons",
    "panel": "kiosk.buttons.panel:PanelButtons",
})


class LedMode(str, enum.Enum):
    ON = "on"
    OFF = "off"
    SLOW = "slow"  # today is full; a press books a later day
    FAST = "fast"  # printing; please wait


@dataclass(frozen=True)
class ButtonSpec:
    """One service's wiring. ``button`` and ``led`` are gpiozero pin names
    ("GPIO17", "BOARD11") or BCM numbers; None when not wired."""

    service: str
    button: str | int | None = None
    led: str | int | None = None

    def __post_init__(self):
        if not isinstance(self.service, str) or not self.service or any(c.isspace() for c in self.service):
            raise ButtonError(f"service code {self.service!r} is invalid; use a letter such as 'A'")


class ButtonSource(Configurable):
    """The seam. Subclasses implement ``_start``, ``_set_led`` and ``_close``."""

    def __init__(self, buttons: Sequence[ButtonSpec]):
        self.buttons = _check_specs(buttons)
        self.services = tuple(spec.service for spec in self.buttons)
        self._started = False
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self, on_press: Callable[[str], None], on_end: Callable[[], None] | None = None) -> None:
        """Begin reporting presses: ``on_press(service)``, maybe from the source's own thread.

        ``on_end()`` is called once if the source runs dry (keyboard EOF); a
        GPIO source never runs dry, and a source you closed never calls it.
        """
        if self._closed:
            raise ButtonError(f"{type(self).__name__} is closed; make a new one to start again")
        if self._started:
            raise ButtonError(f"{type(self).__name__} is already started; call start() once")
        self._started = True
        self._start(on_press, on_end)

    def set_led(self, service: str, mode: LedMode) -> None:
        """Show ``mode`` on ``service``'s LED; a service without an LED ignores it.

        After close() this does nothing: a printing thread racing shutdown
        must not crash on its way out.
        """
        mode = _check_mode(mode)
        self._check_service(service)
        if not self._closed:
            self._set_led(service, mode)

    def close(self) -> None:
        """Release the buttons and LEDs. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_service(self, service: str) -> None:
        if service not in self.services:
            raise ButtonError(f"service {service!r} has no button; use one of: {', '.join(self.services)}")

    def _report(self, on_press: Callable[[str], None], service: str) -> None:
        if self._closed:
            return  # a press racing close() is dropped, never half-handled
        # A bug in the kiosk's handler must not kill the thread that delivers
        # presses (gpiozero's callback thread or our reader): log and go on.
        try:
            on_press(service)
        except Exception:
            log.exception("press handler failed for service %r", service)

    def _start(self, on_press, on_end) -> None:
        raise NotImplementedError

    def _set_led(self, service: str, mode: LedMode) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass


def make_button_source(backend: str, buttons: Sequence[ButtonSpec], **options) -> ButtonSource:
    """Build (but do not start) the button backend called ``backend``."""
    return BACKENDS.load(backend)(buttons, **options)


def _check_specs(buttons: Sequence[ButtonSpec]) -> tuple[ButtonSpec, ...]:
    specs = tuple(buttons)
    if not specs:
        raise ButtonError("no buttons given; configure at least one service")
    seen = set()
    for spec in specs:
        if not isinstance(spec, ButtonSpec):
            raise ButtonError(f"{spec!r} is not a ButtonSpec; wrap each service in ButtonSpec(...)")
        if spec.service in seen:
            raise ButtonError(f"service {spec.service!r} is listed twice; give each service one entry")
        seen.add(spec.service)
    return specs


def _check_mode(mode) -> LedMode:
    try:
        return LedMode(mode)
    except ValueError:
        choices = ", ".join(m.value for m in LedMode)
        raise ButtonError(f"LED mode {mode!r} is unknown; use one of: {choices}") from None


__all__ = [
    "BACKENDS", "ButtonError", "ButtonSource", "ButtonSpec", "LedMode", "UnknownBackend",
    "make_button_source",
]
