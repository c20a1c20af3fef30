"""GpioButtons against gpiozero's MockFactory: real gpiozero code, mock pins.

MockPin calls a Button's handler synchronously in the thread that drives the
pin, so once ``drive_low()`` returns every press it caused has been reported;
the ``wait_for`` helper still waits on an event so these tests hold on real
factories too, where presses arrive on gpiozero's callback thread.
"""

import subprocess
import sys
import threading

import pytest
from gpiozero import Button, Device
from gpiozero.pins.mock import MockFactory
from support import wait_until
from support.clock import ManualClock

from kiosk.buttons import ButtonError, ButtonSpec, LedMode, UnknownBackend, make_button_source
from kiosk.buttons.gpio import GpioButtons
from kiosk.buttons.guard import PressGuard

TIMEOUT = 5.0
SPECS = [ButtonSpec("A", "GPIO17", "GPIO27"), ButtonSpec("B", "GPIO22", "GPIO23")]


class Presses:
    """Collects on_press calls from any thread and lets a test await them."""

    def __init__(self):
        self.services = []
        self._changed = threading.Condition()

    def __call__(self, service):
        with self._changed:
            self.services.append(service)
            self._changed.notify_all()

    def wait_for(self, n, timeout=TIMEOUT):
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.services) >= n, timeout), self.services
        return list(self.services)


@pytest.fixture
def factory():
    return MockFactory()


@pytest.fixture
def source(factory):
    src = GpioButtons(SPECS, pin_factory=factory)
    yield src
    src.close()


@pytest.fixture
def presses(source):
    got = Presses()
    source.start(got)
    return got


def press(pin):
    pin.drive_low()  # pull_up=True: the button shorts the pin to ground
    pin.drive_high()


def test_press_reports_service_once(factory, presses):
    press(factory.pin("GPIO17"))
    assert presses.wait_for(1) == ["A"]


def test_presses_before_start_are_ignored(factory, source):
    press(factory.pin("GPIO17"))
    got = Presses()
    source.start(got)
    press(factory.pin("GPIO22"))
    assert got.wait_for(1) == ["B"]


def test_bounce_gives_one_ticket_with_a_guard_in_front(factory, source):
    # MockPin stores bounce_time but ignores it (gpiozero: "XXX Need to
    # implement this"), so every bounce edge reaches us; on a real Pi lgpio
    # filters most of them. The guard is what guarantees one ticket.
    clock = ManualClock()
    guard = PressGuard(cooldown_s=2.0, clock=clock)
    raw, tickets = Presses(), Presses()
    source.start(lambda service: (raw(service), guard.accept(service) and tickets(service)))
    pin = factory.pin("GPIO17")
    for _ in range(5):
        press(pin)
        clock.now += 0.005  # contact chatter: edges a few milliseconds apart
    assert raw.wait_for(5) == ["A"] * 5
    assert tickets.services == ["A"]
    clock.now += 2.0
    press(pin)
    assert tickets.wait_for(2) == ["A", "A"]


def test_holding_the_button_gives_one_press(factory, presses):
    pin = factory.pin("GPIO17")
    pin.drive_low()
    pin.drive_low()  # still low: no edge, no press
    assert presses.wait_for(1) == ["A"]
    pin.drive_high()
    assert presses.services == ["A"]
    press(pin)
    assert presses.wait_for(2) == ["A", "A"]


def test_two_buttons_at_once_give_one_press_each(factory, source):
    guard = PressGuard(clock=ManualClock())
    tickets = Presses()
    source.start(lambda service: guard.accept(service) and tickets(service))
    together = threading.Barrier(2)

    def push(name):
        together.wait(TIMEOUT)
        press(factory.pin(name))

    threads = [threading.Thread(target=push, args=(name,)) for name in ("GPIO17", "GPIO22")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert sorted(tickets.wait_for(2)) == ["A", "B"]


def test_pull_down_wiring_presses_on_high(factory):
    with GpioButtons([ButtonSpec("A", "GPIO17")], pull_up=False, pin_factory=factory) as src:
        got = Presses()
        src.start(got)
        pin = factory.pin("GPIO17")
        pin.drive_high()
        pin.drive_low()
        assert got.wait_for(1) == ["A"]


def test_led_on_and_off(factory, source):
    pin = factory.pin("GPIO27")
    assert pin.function == "output" and pin.state is False
    source.set_led("A", LedMode.ON)
    assert pin.state is True
    source.set_led("A", "off")
    assert pin.state is False
    assert factory.pin("GPIO23").state is False  # B untouched


def test_fast_blink_toggles_the_pin(factory, source):
    pin = factory.pin("GPIO27")
    pin.clear_states()
    source.set_led("A", LedMode.FAST)
    wait_until(lambda: len(pin.states) >= 5, TIMEOUT, what="five pin states")  # start state + on, off, on, off
    assert [s.state for s in pin.states[:5]] == [False, True, False, True, False]
    assert all(s.timestamp >= 0.1 for s in pin.states[2:5])  # 0.15 s per phase, loosely
    source.set_led("A", LedMode.OFF)
    assert pin.state is False


def test_slow_blink_toggles_the_pin(factory, source):
    pin = factory.pin("GPIO27")
    pin.clear_states()
    source.set_led("A", LedMode.SLOW)
    wait_until(lambda: len(pin.states) >= 3, TIMEOUT, what="three pin states")  # on, then off after about a second
    assert [s.state for s in pin.states[:3]] == [False, True, False]
    assert pin.states[2].timestamp >= 0.9
    source.set_led("A", LedMode.ON)  # stops the blink thread before lighting
    assert pin.state is True


def test_set_led_checks_service_and_mode(source):
    with pytest.raises(ButtonError, match=r"'C'.*A, B"):
        source.set_led("C", LedMode.ON)
    with pytest.raises(ButtonError, match=r"'disco'.*on, off, slow, fast"):
        source.set_led("A", "disco")


def test_service_without_led_ignores_set_led(factory):
    with GpioButtons([ButtonSpec("A", "GPIO17")], pin_factory=factory) as src:
        src.set_led("A", LedMode.FAST)  # nothing wired, nothing to do


def test_close_releases_pins_for_a_new_source(factory, source, presses):
    source.set_led("A", LedMode.FAST)
    source.close()
    source.close()  # idempotent
    assert factory.pin("GPIO27").state is False  # LEDs go dark on shutdown
    source.set_led("A", LedMode.ON)  # after close: ignored, not a crash
    with GpioButtons(SPECS, pin_factory=factory) as again:
        got = Presses()
        again.start(got)
        press(factory.pin("GPIO17"))
        assert got.wait_for(1) == ["A"]
    assert presses.services == []


def test_start_twice_or_after_close_is_an_error(source, presses):
    with pytest.raises(ButtonError, match="already started"):
        source.start(print)
    source.close()
    with pytest.raises(ButtonError, match="closed"):
        source.start(print)


def test_failing_handler_does_not_stop_later_presses(factory, source, caplog):
    got = Presses()

    def handler(service):
        got(service)
        raise RuntimeError("printer jammed")

    source.start(handler)
    press(factory.pin("GPIO17"))
    press(factory.pin("GPIO22"))
    assert got.wait_for(2) == ["A", "B"]
    assert "press handler failed for service 'A'" in caplog.text


def test_duplicate_pin_is_an_error_and_releases_what_was_claimed(factory):
    specs = [ButtonSpec("A", "GPIO17"), ButtonSpec("B", "BOARD11")]  # BOARD11 is GPIO17
    with pytest.raises(ButtonError, match=r"'B' button and service 'A' button \(GPIO17\).*'BOARD11'"):
        GpioButtons(specs, pin_factory=factory)
    with GpioButtons(specs[:1], pin_factory=factory):
        pass


def test_led_on_a_button_pin_is_a_duplicate(factory):
    with pytest.raises(ButtonError, match=r"'B' LED and service 'A' button"):
        GpioButtons([ButtonSpec("A", 17), ButtonSpec("B", "GPIO22", "GPIO17")], pin_factory=factory)


def test_pin_in_use_elsewhere_names_service_pin_and_fix(factory):
    other = Button("GPIO17", pin_factory=factory)
    try:
        with pytest.raises(ButtonError, match=r"service 'A' button: cannot claim pin 'GPIO17'.*own GPIO pin"):
            GpioButtons([ButtonSpec("A", "GPIO17")], pin_factory=factory)
    finally:
        other.close()


def test_not_a_gpio_pin_is_an_error(factory):
    with pytest.raises(ButtonError, match=r"service 'A' LED: cannot claim pin 'BOARD1'"):
        GpioButtons([ButtonSpec("A", "GPIO17", "BOARD1")], pin_factory=factory)


def test_bad_bounce_time_is_an_error(factory):
    with pytest.raises(ButtonError, match="bounce_time_ms -1"):
        GpioButtons(SPECS, bounce_time_ms=-1, pin_factory=factory)


def test_pin_factory_by_name(factory):
    with make_button_source("gpio", SPECS, pin_factory="mock") as src:
        assert isinstance(src.pin_factory, MockFactory)
        assert src.pin_factory is not factory
    with pytest.raises(ButtonError, match=r"pin factory 'gpiod' is unknown; use one of: .*lgpio.*mock"):
        GpioButtons(SPECS, pin_factory="gpiod")


@pytest.fixture
def default_factory():
    saved = Device.pin_factory
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory = saved


def test_default_pin_factory_is_gpiozeros(default_factory):
    with GpioButtons(SPECS) as src:
        got = Presses()
        src.start(got)
        press(default_factory.pin("GPIO22"))
        assert got.wait_for(1) == ["B"]


def test_unknown_backend_lists_valid_names():
    with pytest.raises(UnknownBackend, match="'usb' is unknown; use one of: gpio, keyboard"):
        make_button_source("usb", SPECS)


def test_importing_the_seam_does_not_import_gpiozero():
    code = "import sys, kiosk.buttons, kiosk.buttons.guard; print('gpiozero' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
