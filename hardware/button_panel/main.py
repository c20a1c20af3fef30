"""Pico entry point: wires machine.Pin, the watchdog and USB CDC to :class:`Panel`.

Deploy (see docs/button-panel.md): copy this folder to the Pico as the
package /button_panel and this file as /main.py. The only code here that
needs ``machine``; everything it calls is pure logic tested on the host.
"""

import random
import select
import sys
import time

import machine

from button_panel import protocol
from button_panel.panel import Panel

# (button GPIO, LED GPIO or None) per service button, in the kiosk's service order:
# button index i on the wire is row i. Buttons close to GND (internal pull-up,
# active low); LEDs are driven high through a 330 ohm resistor.
PINS = (
    (2, 10),
    (3, 11),
    (4, 12),
    (5, 13),
    (6, 14),
    (7, 15),
    (8, 16),
    (9, 17),
)
BUTTONS = 4  # how many rows of PINS are wired (1..8)
WATCHDOG_MS = 5000
LOOP_MS = 5


def _reader(pin):
    return pin.value


def _writer(pin):
    def write(lit):
        pin.value(1 if lit else 0)
    return write


def _write_line(text):
    sys.stdout.write(text)


def _boot_seed():
    # The rp2 port seeds `random` from the ring oscillator at power-up, so this
    # differs per boot without any seeding here.
    return random.getrandbits(protocol.BOOT_BITS)  # MicroPython's getrandbits takes up to 32


def main():
    wdt = machine.WDT(timeout=WATCHDOG_MS)
    rows = PINS[:BUTTONS]
    buttons = [_reader(machine.Pin(b, machine.Pin.IN, machine.Pin.PULL_UP)) for b, _ in rows]
    leds = []
    for _, led in rows:
        leds.append(None if led is None else _writer(machine.Pin(led, machine.Pin.OUT, value=0)))
    panel = Panel(buttons, leds, _write_line, time.ticks_ms, time.ticks_diff, _boot_seed, wdt.feed)
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    lines = protocol.LineBuffer()
    while True:
        panel.step()  # feeds the watchdog: a hung loop resets the Pico within 5 s
        # poll(LOOP_MS) paces the loop and wakes early for host input.
        for _ in poller.poll(LOOP_MS):
            chunk = sys.stdin.read(1)
            if chunk:
                for line in lines.push(chunk):
                    panel.handle_line(line)


main()
