"""The button panel firmware's pure logic under CPython, with fake pins and a fake clock."""

import pytest
from button_panel import protocol
from button_panel.debounce import Debouncer
from button_panel.leds import LedPattern
from button_panel.panel import Panel

WRAP = 1 << 30  # the Pico's ticks_ms wraps here


def ticks_diff(a, b):
    """MicroPython's time.ticks_diff for a 30-bit tick counter."""
    return ((a - b + WRAP // 2) % WRAP) - WRAP // 2


class Clock:
    def __init__(self, start=0):
        self.now = start % WRAP

    def __call__(self):
        return self.now

    def advance(self, ms):
        self.now = (self.now + ms) % WRAP


class Pin:
    def __init__(self, level=1):
        self.level = level  # pulled up: 1 is released, 0 is pressed

    def __call__(self):
        return self.level


def run(poll, clock, ms, step=5):
    events = []
    for _ in range(ms // step):
        clock.advance(step)
        event = poll()
        if event:
            events.append(event)
    return events


# ------------------------------------------------------------ protocol

def test_encode_and_decode_round_trip_with_nmea_checksum():
    line = protocol.encode("HB", (("boot", "00AF"), ("seq", 12), ("up", 3600)))
    body, check = line.rstrip("\n").split("*")
    assert body == "HB boot=00AF seq=12 up=3600"
    expected = 0
    for byte in body.encode():
        expected ^= byte
    assert check == f"{expected:02X}"
    assert protocol.decode(line) == ("HB", {"boot": "00AF", "seq": "12", "up": "3600"})
    assert protocol.decode(line.encode().replace(b"\n", b"\r\n")) == protocol.decode(line)


@pytest.mark.parametrize("line, code", [
    ("PRESS boot=1A2B seq=1 b=0*00", "bad_checksum"),
    ("PRESS boot=1A2B seq=1 b=0", "bad_line"),
    ("PRESS boot=1A2B seq=1 b=0*G1", "bad_line"),
    ("*00", "bad_line"),
    ("PRESS b*" + "%02X" % protocol.checksum("PRESS b"), "bad_line"),
    ("PRESS b=1 b=2*" + "%02X" % protocol.checksum("PRESS b=1 b=2"), "bad_line"),
    ("A" * 78 + "*00", "too_long"),
    ("\x00\x01garbage", "bad_line"),
    ("", "bad_line"),
])
def test_decode_names_each_problem(line, code):
    with pytest.raises(ValueError) as caught:
        protocol.decode(line)
    assert protocol.error_code(caught.value) == code


def test_single_bit_noise_is_always_caught():
    line = protocol.encode("PRESS", (("boot", "BEEF"), ("seq", 7), ("b", 3))).rstrip("\n").encode()
    for index in range(len(line) - 3):
        for bit in range(7):
            noisy = bytearray(line)
            noisy[index] ^= 1 << bit
            with pytest.raises(ValueError):
                protocol.decode(bytes(noisy))


def test_encode_refuses_what_cannot_be_decoded():
    for fields in ((("fw", "1 0"),), (("k=", "v"),), (("k", "v*"),), (("k", ""),)):
        with pytest.raises(ValueError):
            protocol.encode("HELLO", fields)
    with pytest.raises(ValueError, match="too_long"):
        protocol.encode("ERR", (("code", "x" * 80),))


def test_line_buffer_splits_chunks_and_flags_overlong_lines():
    buf = protocol.LineBuffer()
    assert buf.push(b"LED b=0 ") == []
    assert buf.push(b"m=on*00\nHEL") == ["LED b=0 m=on*00"]
    assert buf.push("x" * 200) == []
    assert buf.push("\nHELLO?*1F\n") == [None, "HELLO?*1F"]
    assert buf.push("HELLO?\r\n") == ["HELLO?\r"]


# ------------------------------------------------------------ debounce

def test_bouncing_contact_gives_one_press():
    clock, pin = Clock(WRAP - 40), Pin()  # across the tick wrap
    deb = Debouncer(pin, clock, ticks_diff)
    events = []
    for level in (0, 1, 0, 1, 1, 0, 1, 0):  # 2 ms per bounce, shorter than stable_ms
        pin.level = level
        clock.advance(2)
        events.append(deb.poll())
    events += run(deb.poll, clock, 100)
    assert [e for e in events if e] == ["press"]
    pin.level = 1
    for level in (0, 1, 0, 1):  # release bounce
        pin.level = level
        clock.advance(2)
        assert deb.poll() is None
    assert run(deb.poll, clock, 100) == []
    assert not deb.pressed


def test_a_glitch_shorter_than_stable_ms_is_no_press():
    clock, pin = Clock(), Pin()
    deb = Debouncer(pin, clock, ticks_diff, stable_ms=30)
    pin.level = 0
    assert run(deb.poll, clock, 25) == []
    pin.level = 1
    assert run(deb.poll, clock, 100) == []


def test_held_button_gives_one_press_and_one_hold():
    clock, pin = Clock(), Pin()
    deb = Debouncer(pin, clock, ticks_diff, stable_ms=30, long_ms=2000)
    pin.level = 0
    assert run(deb.poll, clock, 1000) == ["press"]
    assert run(deb.poll, clock, 1100) == ["hold"]
    assert 2000 <= deb.hold_ms <= 2010
    assert run(deb.poll, clock, 60_000) == []
    pin.level = 1
    assert run(deb.poll, clock, 100) == []
    pin.level = 0
    assert run(deb.poll, clock, 100) == ["press"]


def test_button_stuck_at_power_up_must_be_released_first():
    clock, pin = Clock(), Pin(level=0)
    deb = Debouncer(pin, clock, ticks_diff)
    assert run(deb.poll, clock, 5000) == []
    pin.level = 1
    run(deb.poll, clock, 100)
    pin.level = 0
    assert run(deb.poll, clock, 100) == ["press"]


# ------------------------------------------------------------ LEDs

def sample(led, start, points):
    return [led.value((start + ms) % WRAP) for ms in points]


def test_slow_blinks_one_second_on_one_off():
    led = LedPattern(ticks_diff)
    led.set("slow")
    t0 = WRAP - 500
    assert sample(led, t0, [0, 500, 999, 1000, 1999, 2000, 3000, 60_000, 61_000]) == [
        True, True, True, False, False, True, False, True, False]


def test_fast_blinks_150_ms():
    led = LedPattern(ticks_diff)
    led.set("fast")
    assert sample(led, 0, [0, 149, 150, 299, 300, 450, 3000]) == [True, True, False, False, True, False, True]


def test_on_off_and_repeated_set_does_not_restart_the_blink():
    led = LedPattern(ticks_diff)
    assert led.value(0) is False
    led.set("on")
    assert led.value(5) is True
    led.set("slow")
    assert led.value(100) is True
    led.set("slow")  # same mode again: phase kept
    assert led.value(1100) is False
    with pytest.raises(ValueError, match="bad_mode"):
        led.set("blink")


# ------------------------------------------------------------ the panel loop

class Rig:
    def __init__(self, buttons=3, leds=3, boot=0x1A2B, start=0):
        self.clock = Clock(start)
        self.pins = [Pin() for _ in range(buttons)]
        self.lit = [[] for _ in range(leds)]
        self.sent = []
        self.fed = 0
        self.panel = Panel(self.pins, [lit.append for lit in self.lit], self.sent.append, self.clock,
                           ticks_diff, lambda: boot, self.feed)

    def feed(self):
        self.fed += 1

    def run(self, ms, step=5):
        for _ in range(ms // step):
            self.clock.advance(step)
            self.panel.step()

    def lines(self, verb=None):
        decoded = [protocol.decode(line) for line in self.sent]
        return [fields for v, fields in decoded if v == verb] if verb else decoded

    def press(self, index, hold_ms=100):
        self.pins[index].level = 0
        self.run(hold_ms)
        self.pins[index].level = 1
        self.run(100)


def test_hello_first_then_press_lines_with_sequence_numbers():
    rig = Rig()
    rig.run(10)
    assert rig.lines()[0] == ("HELLO", {"v": "1", "fw": "1.1.0", "buttons": "3", "boot": "00001A2B"})
    rig.press(2)
    rig.press(0)
    assert rig.lines("PRESS") == [{"boot": "00001A2B", "seq": "1", "b": "2"},
                                  {"boot": "00001A2B", "seq": "2", "b": "0"}]
    assert all(line.endswith("\n") and len(line) <= 81 for line in rig.sent)


def test_long_press_sends_one_press_and_one_hold():
    rig = Rig()
    rig.press(1, hold_ms=5000)
    assert rig.lines("PRESS") == [{"boot": "00001A2B", "seq": "1", "b": "1"}]
    hold = rig.lines("HOLD")
    assert len(hold) == 1 and hold[0]["seq"] == "1" and hold[0]["b"] == "1" and int(hold[0]["ms"]) >= 2000


def test_heartbeat_every_second_carries_last_seq_and_uptime():
    rig = Rig(start=WRAP - 2000)  # the tick counter wraps during the test
    rig.run(3000)
    rig.press(0)
    rig.run(2000)
    beats = rig.lines("HB")
    assert len(beats) == 5
    assert [b["seq"] for b in beats] == ["0", "0", "0", "1", "1"]
    assert [int(b["up"]) for b in beats] == [1, 2, 3, 4, 5]


def test_led_commands_drive_the_leds_and_bad_input_gets_err():
    rig = Rig()
    rig.run(10)
    assert rig.panel.handle_line(protocol.encode("LED", (("b", 1), ("m", "fast")))) == "LED"
    rig.run(400)
    assert rig.lit[1] == [False, True, False, True]  # initial off, then blinking at 150 ms
    assert rig.lit[0] == [False]
    rig.sent.clear()
    rig.panel.handle_line(protocol.encode("LED", (("b", 7), ("m", "on"))))  # no button 7 on this panel
    rig.panel.handle_line(protocol.encode("LED", (("b", 0), ("m", "disco"))))
    rig.panel.handle_line(protocol.encode("LED", (("b", "x"), ("m", "on"))))
    rig.panel.handle_line(protocol.encode("DANCE"))
    rig.panel.handle_line("LED b=0 m=on*00")
    rig.panel.handle_line("hello")
    rig.panel.handle_line(None)  # an overlong line from LineBuffer
    assert [f["code"] for f in rig.lines("ERR")] == [
        "bad_button", "bad_mode", "bad_button", "unknown_verb", "bad_checksum", "bad_line", "too_long"]
    assert rig.panel.led_mode(0) == "off"


def test_hello_query_repeats_hello():
    rig = Rig()
    rig.run(10)
    rig.panel.handle_line(protocol.encode("HELLO?"))
    assert [v for v, _ in rig.lines()] == ["HELLO", "HELLO"]


def test_watchdog_is_fed_only_by_the_running_loop():
    rig = Rig()
    rig.run(100)
    assert rig.fed == 20 == rig.panel.steps
    for _ in range(50):
        rig.panel.handle_line(protocol.encode("HELLO?"))  # busy with the host, not looping
    assert rig.fed == 20

    def broken(lit):
        raise OSError("LED driver stuck")

    rig.panel.leds[0] = broken
    rig.panel.handle_line(protocol.encode("LED", (("b", 0), ("m", "on"))))
    with pytest.raises(OSError):
        rig.run(5)
    assert rig.fed == 20  # a loop that fails part-way does not keep the Pico alive


def test_panel_checks_its_wiring():
    with pytest.raises(ValueError):
        Panel([], [], print, Clock(), ticks_diff, lambda: 1, lambda: None)
    with pytest.raises(ValueError):
        Panel([Pin()] * 9, [], print, Clock(), ticks_diff, lambda: 1, lambda: None)
    rig = Rig(buttons=2, leds=1)
    rig.panel.handle_line(protocol.encode("LED", (("b", 1), ("m", "on"))))  # no LED wired: fine
    rig.run(10)


def test_documented_examples_have_correct_checksums():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "button-panel.md").read_text()
    block = doc.split("Examples (checksums are real):")[1].split("```")[1]
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) == 6
    for line in lines:
        protocol.decode(line)
