"""GPIO pin names as gpiozero reads them, brought to one Broadcom (BCM) number.

gpiozero takes a pin as 17, "17", "GPIO17", "BCM17", "BOARD11" or "J8:11"
(gpiozero.pins.pi.PiBoardInfo._make_pin): all the same pin. The config is
checked on the BCM number, so one pin written two ways is still one pin.
"""

import re

# The 40-pin header (J8) of every Raspberry Pi since the B+: physical pin -> BCM GPIO.
# The missing pins are power and ground (gpiozero.pins.data.PLUS_J8).
HEADER_GPIO = {3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10,
               21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19,
               36: 16, 37: 26, 38: 20, 40: 21}
HEADER_POWER = {1: "3V3 power", 17: "3V3 power", 2: "5V power", 4: "5V power"}
BCM_ON_HEADER = range(0, 28)
FORMS = '17, "GPIO17", "BCM17", "BOARD11" or "J8:11"'
_NAME = re.compile(r"(?:(GPIO|BCM)|(BOARD|J8:))?(\d{1,3})", re.IGNORECASE)


class GpioPin(int):
    """A BCM GPIO number; str() is gpiozero's primary name, e.g. "GPIO17"."""

    def __str__(self) -> str:
        return f"GPIO{int(self)}"

    __repr__ = __str__


def bcm_pin(value) -> tuple[GpioPin | None, str]:
    """(the pin, '') or (None, why it is no GPIO pin on the header) for a config value."""
    if isinstance(value, int) and not isinstance(value, bool):
        text, board_form = str(value), False
    else:
        match = _NAME.fullmatch(value.strip()) if isinstance(value, str) else None
        if not match:
            return None, f"is not a pin name; write it as {FORMS}"
        text, board_form = match.group(3), bool(match.group(2))
    number = int(text)
    if board_form:
        if number in HEADER_GPIO:
            return GpioPin(HEADER_GPIO[number]), ""
        what = HEADER_POWER.get(number, "ground" if 1 <= number <= 40 else "not on the 40-pin header")
        return None, f"is header pin {number}: {what}, not a GPIO; use a GPIO pin, e.g. \"BOARD11\" (GPIO17)"
    if number not in BCM_ON_HEADER:
        return None, "is not on the 40-pin header; use GPIO0 to GPIO27, e.g. \"GPIO17\""
    return GpioPin(number), ""
