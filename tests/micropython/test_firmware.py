# Runs on MicroPython (see runner.mjs): the firmware's pure logic with fake pins
# and a fake clock built on time.ticks_add/ticks_diff, so tick wrap-around is real.
import sys
import time

from button_panel import protocol
from button_panel.debounce import Debouncer
from button_panel.leds import LedPattern
from button_panel.panel import Panel

results = []


def check(name, fn):
    try:
        fn()
        print("PASS " + name)
    except Exception as exc:
        print("FAIL " + name + ": " + type(exc).__name__ + ": " + str(exc))


def raises(fn, word):
    try:
        fn()
    except ValueError as exc:
        assert protocol.error_code(exc) == word, str(exc)
        return
    raise AssertionError("no ValueError " + word)


class Clock:
    def __init__(self, start=0):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, ms):
        self.now = time.ticks_add(self.now, ms)


class Pin:
    def __init__(self):
        self.level = 1  # pulled up: released

    def __call__(self):
        return self.level


def t_platform():
    assert sys.implementation.name == "micropython", sys.implementation.name


def t_encode_decode():
    line = protocol.encode("PRESS", (("boot", "1A2B"), ("seq", 3), ("b", 0)))
    assert line.endswith("\n")
    body = line[:line.index("*")]
    assert body == "PRESS boot=1A2B seq=3 b=0", body
    assert line[-3:-1] == "%02X" % protocol.checksum(body)
    verb, fields = protocol.decode(line)
    assert verb == "PRESS" and fields == {"boot": "1A2B", "seq": "3", "b": "0"}, fields
    assert protocol.decode(line.encode()) == (verb, fields)
    assert protocol.decode(protocol.encode("HELLO?")) == ("HELLO?", {})


def t_checksum_errors():
    line = protocol.encode("LED", (("b", 1), ("m", "slow")))
    raises(lambda: protocol.decode(line.replace("b=1", "b=2")), "bad_checksum")
    raises(lambda: protocol.decode("LED b=1 m=on"), "bad_line")
    raises(lambda: protocol.decode("LED b=1 m=on*ZZ"), "bad_line")
    raises(lambda: protocol.decode(b"LED \xff*00"), "bad_line")
    raises(lambda: protocol.decode("X" * 81), "too_long")
    raises(lambda: protocol.encode("HELLO", (("fw", "a b"),)), "bad_line")


def t_line_buffer():
    buf = protocol.LineBuffer()
    assert buf.push("HEL") == []
    assert buf.push("LO?*1F\nLED") == ["HELLO?*1F"]
    assert buf.push("X" * 100) == []
    assert buf.push("\nok\n") == [None, "ok"]


def t_debounce_bounce_and_hold():
    clock, pin = Clock(time.ticks_add(0, -50)), Pin()  # start just before a tick wrap
    deb = Debouncer(pin, clock, time.ticks_diff, stable_ms=30, long_ms=2000)
    events = []
    for level in (0, 1, 0, 1, 0):  # contact bounce, 5 ms per level
        pin.level = level
        clock.advance(5)
        events.append(deb.poll())
    for _ in range(10):
        clock.advance(5)
        events.append(deb.poll())
    assert [e for e in events if e] == ["press"], events
    for _ in range(500):  # held 2.5 s: one hold, no second press
        clock.advance(5)
        events.append(deb.poll())
    assert [e for e in events if e] == ["press", "hold"], events
    assert deb.hold_ms >= 2000
    pin.level = 1
    for _ in range(10):
        clock.advance(5)
        assert deb.poll() is None


def t_leds():
    led = LedPattern(time.ticks_diff)
    t0 = time.ticks_add(0, -700)
    assert led.value(t0) is False
    led.set("slow")
    lit = [led.value(time.ticks_add(t0, ms)) for ms in (0, 999, 1000, 1999, 2000, 5500)]
    assert lit == [True, True, False, False, True, False], lit
    led.set("fast")
    assert [led.value(time.ticks_add(t0, 10000 + ms)) for ms in (0, 149, 150, 300)] == [True, True, False, True]
    led.set("on")
    assert led.value(t0) is True


def t_panel():
    clock, pins, sent, fed, leds = Clock(), [Pin(), Pin()], [], [], [[], []]
    panel = Panel(pins, [leds[0].append, leds[1].append], sent.append, clock, time.ticks_diff,
                  lambda: 0xDEADBEEF, lambda: fed.append(1))  # 32 bits: a long int on MicroPython
    panel.step()
    assert protocol.decode(sent[0]) == ("HELLO", {"v": "1", "fw": "1.1.0", "buttons": "2", "boot": "DEADBEEF"})
    pins[1].level = 0
    for _ in range(20):
        clock.advance(5)
        panel.step()
    assert protocol.decode(sent[-1]) == ("PRESS", {"boot": "DEADBEEF", "seq": "1", "b": "1"}), sent
    for _ in range(200):
        clock.advance(5)
        panel.step()
    verbs = [protocol.decode(s)[0] for s in sent]
    assert verbs.count("HB") == 1 and verbs.count("PRESS") == 1, verbs
    assert len(fed) == panel.steps
    panel.handle_line(protocol.encode("LED", (("b", 0), ("m", "fast"))))
    panel.handle_line(protocol.encode("LED", (("b", 5), ("m", "on"))))
    panel.handle_line("garbage")
    assert [protocol.decode(s)[1]["code"] for s in sent[-2:]] == ["bad_button", "bad_line"]
    assert len(fed) == panel.steps  # handling lines never feeds the watchdog
    clock.advance(5)
    panel.step()
    assert leds[0][-1] is True and panel.led_mode(0) == "fast"


check("runs on MicroPython", t_platform)
check("protocol encode/decode", t_encode_decode)
check("protocol errors", t_checksum_errors)
check("line buffer", t_line_buffer)
check("debounce: bounce is one press, hold once", t_debounce_bounce_and_hold)
check("LED patterns", t_leds)
check("panel loop", t_panel)
