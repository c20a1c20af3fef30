"""Service buttons and LEDs on the Pi's GPIO header, through gpiozero.

gpiozero is imported only when a :class:`GpioButtons` is built, so the rest
of the kiosk (and its tests) never pay for it or need a Pi.
"""

import threading
from collections.abc import Sequence

from common.tables import Key
from kiosk.buttons import ButtonSource, ButtonSpec, LedMode
from kiosk.buttons.errors import ButtonError

# (seconds on, seconds off). Slow is calm, "not today"; fast is busy, "printing".
BLINK = {LedMode.SLOW: (1.0, 1.0), LedMode.FAST: (0.15, 0.15)}

PIN_FIX = ("give every button and LED its own GPIO pin (e.g. 'GPIO17' or 'BOARD11') "
           "in the services config and stop any other program using it")
FACTORY_FIX = ('on a Raspberry Pi install lgpio (pip install "antrean[pi]"); '
               'elsewhere set buttons.pin_factory = "mock" or buttons.backend = "keyboard"')


class GpioButtons(ButtonSource):
    """One gpiozero Button per service with a ``button`` pin, one LED per ``led`` pin.

    ``pin_factory`` is None (gpiozero's default), a gpiozero Factory (tests
    pass ``MockFactory()``), or a factory name such as "mock" or "lgpio".
    A factory built from a name belongs to us and is closed by :meth:`close`.
    """

    OPTIONS = {"pin_factory": Key("str", "", choices=("", "mock", "lgpio", "rpigpio", "native")),
               "pull_up": Key("bool", True), "bounce_time_ms": Key("int", 50, limits=(0, 1000))}

    def __init__(self, buttons: Sequence[ButtonSpec], pull_up: bool = True,
                 bounce_time_ms: int = 50, pin_factory=None):
        super().__init__(buttons)
        if not isinstance(bounce_time_ms, int) or bounce_time_ms < 0:
            raise ButtonError(f"bounce_time_ms {bounce_time_ms!r} is invalid; use 0 or more, e.g. 50")
        self.pin_factory, self._owns_factory = _resolve_factory(pin_factory)
        self._lock = threading.Lock()  # gpiozero's blink()/on() are not safe to race
        self._buttons = {}
        self._leds = {}
        self._modes = {}
        try:
            self._claim_all(pull_up, bounce_time_ms / 1000 or None)
        except BaseException:
            self._close()
            raise

    def _claim_all(self, pull_up: bool, bounce_time: float | None) -> None:
        from gpiozero import LED, Button

        for spec in self.buttons:
            if spec.button is not None:
                self._buttons[spec.service] = self._claim(
                    spec.service, "button", spec.button, Button, pull_up=pull_up, bounce_time=bounce_time)
            if spec.led is not None:
                self._leds[spec.service] = self._claim(spec.service, "LED", spec.led, LED)

    def _claim(self, service: str, role: str, pin, cls, **kwargs):
        try:
            return cls(pin, pin_factory=self.pin_factory, **kwargs)
        except Exception as exc:
            owner = self._owner_of(pin)
            if owner:
                raise ButtonError(f"service {service!r} {role} and {owner} both use pin {pin!r}; "
                                  f"{PIN_FIX}") from exc
            raise ButtonError(f"service {service!r} {role}: cannot claim pin {pin!r} ({exc}); "
                              f"{PIN_FIX}") from exc

    def _owner_of(self, pin) -> str | None:
        # gpiozero knows every alias of a pin (17, "GPIO17", "BOARD11", ...),
        # so "BOARD11" is caught as a duplicate of "GPIO17".
        for role, devices in (("button", self._buttons), ("LED", self._leds)):
            for service, device in devices.items():
                if pin in device.pin.info.names:
                    return f"service {service!r} {role} ({device.pin.info.name})"
        return None

    def _start(self, on_press, on_end) -> None:
        with self._lock:
            for service, button in self._buttons.items():
                # when_pressed fires once per falling edge: holding gives one press.
                button.when_pressed = self._handler(on_press, service)

    def _handler(self, on_press, service: str):
        return lambda: self._report(on_press, service)

    def _set_led(self, service: str, mode: LedMode) -> None:
        led = self._leds.get(service)
        with self._lock:
            if led is None or self.closed or self._modes.get(service) is mode:
                return  # restarting a blink would visibly stutter
            self._modes[service] = mode
            _show(led, mode)

    def _close(self) -> None:
        # Buttons first and outside the lock: a press handler that is calling
        # set_led must be able to finish while its button is being closed.
        for button in self._buttons.values():
            button.close()
        with self._lock:
            for led in self._leds.values():
                led.off()  # a panel left lit after shutdown would lie to the queue
                led.close()
        if self._owns_factory:
            self.pin_factory.close()


def _show(led, mode: LedMode) -> None:
    if mode is LedMode.ON:
        led.on()
    elif mode is LedMode.OFF:
        led.off()
    else:
        on_time, off_time = BLINK[mode]
        led.blink(on_time=on_time, off_time=off_time, background=True)


def _resolve_factory(pin_factory):
    """Return ``(factory, owned)``; only a factory we built from a name is ours to close."""
    if pin_factory is None or pin_factory == "":
        return _default_factory(), False
    if isinstance(pin_factory, str):
        return _named_factory(pin_factory), True
    return pin_factory, False


def _default_factory():
    from gpiozero import Device

    try:
        Device.ensure_pin_factory()
    except Exception as exc:
        raise ButtonError(f"no GPIO pin factory could be loaded ({exc}); {FACTORY_FIX}") from exc
    return Device.pin_factory


def _named_factory(name: str):
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group="gpiozero_pin_factories")}
    if name.lower() not in found:
        raise ButtonError(f"pin factory {name!r} is unknown; use one of: {', '.join(sorted(found))}")
    try:
        return found[name.lower()].load()()
    except Exception as exc:
        raise ButtonError(f"pin factory {name!r} could not start ({exc}); {FACTORY_FIX}") from exc
