"""The kiosk and a button panel on a real pty: the firmware's Panel on one end, PanelButtons on the other."""

import datetime as dt
import os
import threading
import time
import tty

import pytest
from button_panel import protocol
from button_panel.panel import Panel
from support import FakeSystemClock, at, wait_until

from kiosk.buttons import ButtonError, ButtonSpec, LedMode
from kiosk.buttons.panel import PanelButtons
from kiosk.printer.dummy import DummyPrinter

MON = dt.date(2026, 11, 23)
WRAP = 1 << 30


def ticks_diff(a, b):
    return ((a - b + WRAP // 2) % WRAP) - WRAP // 2


class FakePanel:
    """The firmware's Panel behind a pty whose slave is symlinked at ``link``.

    A driver thread steps the Panel with a fake clock (10 ms per step, about
    5x real time) and carries lines between the Panel and the pty master.
    """

    def __init__(self, link, buttons=2, boot=0xB001):
        self.link = str(link)
        self.pins = [1] * buttons
        self.running = threading.Event()
        self.running.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.master = self.slave = None
        self.received = []  # host lines, as decoded
        self.new_panel(boot)
        self.plug()
        self._thread = threading.Thread(target=self._drive, daemon=True)
        self._thread.start()

    def new_panel(self, boot):
        """Power-cycle: a fresh firmware state with a new boot id, LEDs off."""
        with self._lock:
            self.now = 0
            self.panel = Panel([lambda i=i: self.pins[i] for i in range(len(self.pins))],
                               [lambda lit: None] * len(self.pins), self._write, lambda: self.now,
                               ticks_diff, lambda: boot, lambda: None)

    def plug(self):
        with self._lock:
            self.master, self.slave = os.openpty()
            tty.setraw(self.slave)
            os.set_blocking(self.master, False)
            tmp = self.link + ".tmp"
            os.symlink(os.ttyname(self.slave), tmp)
            os.replace(tmp, self.link)
            self.buffer = protocol.LineBuffer()

    def unplug(self):
        with self._lock:
            for fd in (self.master, self.slave):
                os.close(fd)
            self.master = self.slave = None
            os.unlink(self.link)

    def raw(self, data: bytes):
        """Write bytes to the host as if the panel (or line noise) sent them."""
        with self._lock:
            os.write(self.master, data)

    def press(self, index):
        before = self.panel.seq
        self.pins[index] = 0
        assert wait(lambda: self.panel.seq > before, 5)
        self.pins[index] = 1
        assert wait(lambda: not self.panel.debouncers[index].pressed, 5)  # released, as the firmware sees it

    def _write(self, line):
        if self.master is not None:  # unplugged: USB CDC drops what nobody reads
            try:
                os.write(self.master, line.encode())
            except BlockingIOError:
                pass

    def _drive(self):
        while not self._stop.is_set():
            with self._lock:
                if self.master is not None:
                    try:
                        data = os.read(self.master, 4096)
                    except (BlockingIOError, OSError):
                        data = b""
                    for line in self.buffer.push(data):
                        if line is not None:
                            try:
                                self.received.append(protocol.decode(line))
                            except ValueError:
                                pass
                        self.panel.handle_line(line)
                if self.running.is_set():
                    self.now = (self.now + 10) % WRAP
                    self.panel.step()
            time.sleep(0.002)

    def close(self):
        self._stop.set()
        self._thread.join(5)
        if self.master is not None:
            self.unplug()


def wait(predicate, timeout) -> bool:
    """Whether ``predicate`` came true within ``timeout``: the caller asserts it, saying what it saw."""
    try:
        return bool(wait_until(predicate, timeout))
    except AssertionError:
        return False


@pytest.fixture
def rig(tmp_path, make_config, kiosks):
    link = tmp_path / "panel"
    fakes = []

    def make(heartbeat_timeout_ms=1000, reconnect_s=0.1, **config):
        fakes.append(FakePanel(link))
        buttons = PanelButtons([ButtonSpec("A"), ButtonSpec("B")], str(link), heartbeat_timeout_ms=heartbeat_timeout_ms,
                               reconnect_s=reconnect_s)
        kiosk = kiosks(make_config(), worker=True, printer=DummyPrinter(), buttons=buttons,
                       system_clock=FakeSystemClock(at("2026-11-23 09:00")))
        assert buttons.wait_for(lambda: buttons.connected, 5), buttons.last_error
        return fakes[-1], kiosk, buttons

    yield make
    kiosks.close()  # the kiosk stops before its panel goes away
    for fake in fakes:
        fake.close()


def tickets(kiosk, code="A"):
    kiosk.drain()
    return kiosk.ledger.taken(code, MON)


def test_a_press_on_the_panel_prints_a_ticket_and_leds_come_back(rig):
    fake, kiosk, buttons = rig()
    assert buttons.panel["boot"] == "0000B001" and buttons.panel["buttons"] == "2"
    assert wait(lambda: fake.panel.led_mode(0) == "on" and fake.panel.led_mode(1) == "on", 5)
    fake.press(0)
    assert wait(lambda: tickets(kiosk) == 1, 5)
    fake.press(1)
    assert wait(lambda: tickets(kiosk, "B") == 1, 5)
    assert kiosk.printer.output  # the dummy printer got the ESC/POS bytes
    # Service A has a daily quota of 3: when it is full the LED blinks slowly.
    fake.press(0)
    fake.press(0)
    assert wait(lambda: tickets(kiosk) == 3, 5)
    assert wait(lambda: fake.panel.led_mode(0) == "slow", 5)
    assert ("LED", {"b": "0", "m": "slow"}) in fake.received
    assert buttons.garbage == 0 and buttons.missed == 0


def test_garbage_and_replayed_lines_do_no_harm(rig):
    fake, kiosk, buttons = rig()
    fake.press(1)
    assert wait(lambda: tickets(kiosk, "B") == 1, 5)
    replay = protocol.encode("PRESS", (("boot", "B001"), ("seq", 1), ("b", 1))).encode()
    fake.raw(b"\x00\xff\xfenoise\r\n")
    fake.raw(b"PRESS boot=B001 seq=9 b=1*00\n")  # bad checksum
    fake.raw(b"PRESS boot=B001 seq=9 b=1\n")  # no checksum
    fake.raw(b"P" * 300 + b"\n")  # overlong
    fake.raw(protocol.encode("PRESS", (("boot", "B001"), ("seq", 9), ("b", 6))).encode())  # no such service
    fake.raw(replay + replay)
    assert wait(lambda: buttons.garbage == 5 and buttons.duplicates == 2, 5), (buttons.garbage, buttons.duplicates)
    fake.press(1)
    assert wait(lambda: tickets(kiosk, "B") == 2, 5)
    fake.raw(b"garbage after everything\n")  # lines are handled in order: once this one is counted,
    assert wait(lambda: buttons.garbage == 6, 5)  # any late extra ticket would be in the ledger
    assert tickets(kiosk, "B") == 2 and tickets(kiosk, "A") == 0
    assert buttons.connected


def test_unplug_shows_disconnected_and_replug_recovers(rig):
    fake, kiosk, buttons = rig()
    fake.press(0)
    assert wait(lambda: tickets(kiosk) == 1, 5)
    fake.unplug()
    assert buttons.wait_for(lambda: not buttons.connected, 5)
    assert buttons.last_error and "panel" in buttons.last_error
    assert wait(lambda: "cannot open" in (buttons.last_error or ""), 5), buttons.last_error
    fake.press(0)  # pressed while unplugged: lost, but the next heartbeat tells the host
    connects = buttons.connects
    fake.plug()
    assert buttons.wait_for(lambda: buttons.connected, 5), buttons.last_error
    assert buttons.connects == connects + 1
    assert wait(lambda: buttons.missed == 1, 5)
    # The same boot's old press, replayed after the reconnect, does nothing.
    fake.raw(protocol.encode("PRESS", (("boot", "B001"), ("seq", 1), ("b", 0))).encode())
    fake.press(0)
    assert wait(lambda: tickets(kiosk) == 2, 5)
    garbage = buttons.garbage
    fake.raw(b"garbage after everything\n")  # handled in order: after it, nothing more can arrive
    assert wait(lambda: buttons.garbage == garbage + 1, 5)
    assert tickets(kiosk) == 2 and buttons.duplicates == 1


def test_a_power_cycled_panel_gets_its_leds_back(rig):
    fake, kiosk, buttons = rig()
    assert wait(lambda: fake.panel.led_mode(1) == "on", 5)
    fake.unplug()
    assert buttons.wait_for(lambda: not buttons.connected, 5)
    fake.new_panel(0xB002)  # new boot id, all LEDs off, seq from 1 again
    assert fake.panel.led_mode(1) == "off"
    fake.plug()
    assert buttons.wait_for(lambda: buttons.connected, 5)
    assert wait(lambda: fake.panel.led_mode(0) == "on" and fake.panel.led_mode(1) == "on", 5)
    fake.press(1)  # seq=1 again, but of a new boot: a real press
    assert wait(lambda: tickets(kiosk, "B") == 1, 5)


def test_a_silent_panel_is_noticed_and_its_return_too(rig):
    fake, kiosk, buttons = rig()
    fake.running.clear()  # firmware hung: the port stays, the lines stop
    assert buttons.wait_for(lambda: not buttons.connected, 5)
    assert "no heartbeat" in buttons.last_error
    fake.running.set()
    assert buttons.wait_for(lambda: buttons.connected, 5)
    assert buttons.last_error is None


def test_set_led_sends_the_led_command_and_close_is_safe(rig):
    fake, kiosk, buttons = rig()
    buttons.set_led("B", LedMode.FAST)
    assert wait(lambda: fake.panel.led_mode(1) == "fast", 5)
    assert ("LED", {"b": "1", "m": "fast"}) in fake.received
    buttons.close()
    buttons.close()
    buttons.set_led("B", LedMode.OFF)  # after close: ignored, no crash
    assert not buttons.connected


def test_settings_are_checked(tmp_path):
    specs = [ButtonSpec("A")]
    with pytest.raises(ButtonError, match="panel_port"):
        PanelButtons(specs, "")
    with pytest.raises(ButtonError, match="heartbeat_timeout_ms"):
        PanelButtons(specs, "/dev/null", heartbeat_timeout_ms=10)
    with pytest.raises(ButtonError, match="at most 8"):
        PanelButtons([ButtonSpec(c) for c in "ABCDEFGHI"], "/dev/ttyACM0")


def test_a_missing_port_is_reported_and_retried(tmp_path):
    buttons = PanelButtons([ButtonSpec("A")], str(tmp_path / "nothing"), reconnect_s=0.05)
    buttons.start(lambda service: None)
    try:
        assert buttons.wait_for(lambda: buttons.last_error is not None, 5)
        assert "cannot open panel" in buttons.last_error and not buttons.connected
    finally:
        buttons.close()


# --- replays: a press is (boot, seq), and what is remembered is not lowered by any line ----------

def line(verb, **fields) -> bytes:
    return protocol.encode(verb, tuple(fields.items())).encode()


def settle(fake, buttons):
    """Lines are handled in order: once this garbage line is counted, every earlier one was handled."""
    garbage = buttons.garbage
    fake.raw(b"garbage after everything\n")
    assert wait(lambda: buttons.garbage == garbage + 1, 5)


def test_a_forged_heartbeat_with_uptime_0_does_not_let_a_replay_in(rig):
    fake, kiosk, buttons = rig()
    fake.press(1)
    assert wait(lambda: tickets(kiosk, "B") == 1, 5)
    assert wait(lambda: fake.panel.uptime_ms >= 5000, 10)  # its heartbeats say up=4 and more ...
    settle(fake, buttons)  # ... and the host has read them
    boot = "B001"  # as firmware 1.0 wrote it: the same boot to the host
    fake.raw(line("HB", boot=boot, seq=0, up=0))  # "the same boot id, powered up again"
    fake.raw(line("HELLO", v=1, fw="1.1.0", buttons=2, boot=boot))
    fake.raw(line("PRESS", boot=boot, seq=1, b=1))  # the replay
    settle(fake, buttons)
    assert tickets(kiosk, "B") == 1 and buttons.duplicates == 1


def test_a_replay_after_many_other_boot_ids_is_still_refused(rig):
    fake, kiosk, buttons = rig()
    fake.press(1)
    assert wait(lambda: tickets(kiosk, "B") == 1, 5)
    for other in range(1, 41):  # 40 other power-ups (or lines pretending to be)
        fake.raw(line("HELLO", v=1, fw="1.0.0", buttons=2, boot=f"{other:04X}")
                 + line("HB", boot=f"{other:04X}", seq=0, up=1))
    fake.raw(line("PRESS", boot="B001", seq=1, b=1))
    settle(fake, buttons)
    assert tickets(kiosk, "B") == 1 and buttons.duplicates == 1
    fake.press(1)  # the panel itself goes on: seq 2 of its boot
    assert wait(lambda: tickets(kiosk, "B") == 2, 5)


def test_each_cause_of_garbage_is_logged_once_but_every_line_counted(rig, caplog):
    fake, kiosk, buttons = rig()
    caplog.set_level("DEBUG", logger="kiosk.buttons")
    caplog.clear()
    fake.raw(b"PRESS boot=0000B001 seq=9 b=1*00\n" * 5)  # bad checksum
    fake.raw(b"PRESS boot=0000B001 seq=9 b=1\n" * 3)  # no checksum: bad_line
    fake.raw(b"P" * 300 + b"\n" + b"Q" * 200 + b"\n")  # too long
    fake.raw(line("ERR", code="bad_checksum") * 4)  # the panel's complaints about noise our way
    assert wait(lambda: buttons.garbage == 10 and buttons.panel_errors == 4, 5), buttons.garbage
    warnings = [r for r in caplog.records if r.name == "kiosk.buttons" and r.levelname == "WARNING"
                and ("panel line ignored" in r.getMessage() or "panel reports" in r.getMessage())]
    assert len(warnings) == 4, [r.getMessage() for r in warnings]
    assert dict(buttons.garbage_causes) == {"bad_checksum": 5, "bad_line": 3, "too_long": 2}
    assert tickets(kiosk, "B") == 0


def test_replay_guard_remembers_a_press_whatever_the_heartbeat_says():
    from kiosk.buttons.guard import ReplayGuard

    guard = ReplayGuard(keep_boots=1024)
    guard.hello(0xB001)
    assert guard.press(0xB001, 1) == (True, 0)
    assert guard.heartbeat(0xB001, 0) == 0  # seq (and uptime) going back lowers nothing
    guard.hello(0xB001)
    assert guard.press(0xB001, 1) == (False, 0)
    assert guard.heartbeat(0xB001, 4) == 3  # 2..4 never arrived: counted, and closed to replays
    assert guard.press(0xB001, 3) == (False, 0) and guard.press(0xB001, 6) == (True, 1)


def test_replay_guard_forgets_only_the_least_recently_heard_boots():
    from kiosk.buttons.guard import ReplayGuard

    guard = ReplayGuard(keep_boots=3)
    guard.press(1, 5)
    for boot in (2, 3):
        guard.hello(boot)
    guard.heartbeat(1, 5)  # boot 1 is heard again: it stays
    guard.hello(4)  # evicts boot 2, the least recently heard
    assert guard.press(1, 5) == (False, 0) and not guard.knows(2)
