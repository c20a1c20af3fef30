"""Button panel wire protocol v1: checksummed ASCII lines (see docs/button-panel.md).

A line is ``VERB key=value key=value*HH`` followed by "\\n", at most
MAX_LINE characters before the "\\n". HH is two upper-case hex digits of
the XOR of every byte before the "*" (as in NMEA 0183), so line noise on
the USB/UART link shows up as a bad checksum instead of a wrong press.

Runs unchanged on CPython (the kiosk) and MicroPython (the Pico): no
f-strings, no typing, no dataclasses. Errors are ValueError whose message
starts with the ERR code word, e.g. "bad_checksum: ...".
"""

VERSION = 1
MAX_LINE = 80  # characters, "\n" not counted
MAX_BUTTONS = 8
LED_MODES = ("on", "off", "slow", "fast")

# Panel -> host
HELLO = "HELLO"
PRESS = "PRESS"
HOLD = "HOLD"
HB = "HB"
ERR = "ERR"
# Host -> panel
LED = "LED"
HELLO_Q = "HELLO?"

PANEL_VERBS = (HELLO, PRESS, HOLD, HB, ERR)
HOST_VERBS = (LED, HELLO_Q)

# ERR code words
BAD_LINE = "bad_line"
BAD_CHECKSUM = "bad_checksum"
UNKNOWN_VERB = "unknown_verb"
BAD_BUTTON = "bad_button"
BAD_MODE = "bad_mode"
TOO_LONG = "too_long"


def checksum(body):
    """XOR of the bytes (or characters) of ``body``, 0..255."""
    total = 0
    if isinstance(body, str):
        for ch in body:
            total ^= ord(ch) & 0xFF
    else:
        for byte in body:
            total ^= byte
    return total


def _printable(text):
    for ch in text:
        code = ord(ch)
        if code < 33 or code > 126:
            return False
    return True


def encode(verb, fields=()):
    """Return the line for ``verb`` and ``fields`` (pairs, in order), ending in "\\n".

    Raises ValueError if a word holds a space, "=", "*" or a non-ASCII
    character, or the line would be longer than MAX_LINE.
    """
    if not verb or not _printable(verb) or "=" in verb or "*" in verb:
        raise ValueError(BAD_LINE + ": verb " + repr(verb) + " is not a plain ASCII word")
    parts = [verb]
    for pair in fields:
        key = str(pair[0])
        value = str(pair[1])
        if not key or not value or not _printable(key) or not _printable(value) or "=" in key \
                or "*" in key or "*" in value:
            raise ValueError(BAD_LINE + ": field " + repr(key) + "=" + repr(value) + " is not plain ASCII")
        parts.append(key + "=" + value)
    body = " ".join(parts)
    line = body + "*" + "%02X" % checksum(body)
    if len(line) > MAX_LINE:
        raise ValueError(TOO_LONG + ": line has " + str(len(line)) + " characters, at most "
                         + str(MAX_LINE) + " allowed")
    return line + "\n"


def decode(line):
    """Parse one line (str or bytes, with or without its "\\n") into ``(verb, fields_dict)``.

    Raises ValueError naming the problem; its message starts with the ERR
    code word (see :func:`error_code`).
    """
    if isinstance(line, (bytes, bytearray)):
        for byte in line:
            if byte > 126:
                raise ValueError(BAD_LINE + ": non-ASCII byte 0x%02X" % byte)
        line = bytes(line).decode()
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    if len(line) > MAX_LINE:
        raise ValueError(TOO_LONG + ": line has " + str(len(line)) + " characters, at most "
                         + str(MAX_LINE) + " allowed")
    if not line:
        raise ValueError(BAD_LINE + ": empty line")
    for ch in line:
        code = ord(ch)
        if code < 32 or code > 126:
            raise ValueError(BAD_LINE + ": control or non-ASCII character 0x%02X" % code)
    star = line.rfind("*")
    if star < 0 or star != len(line) - 3:
        raise ValueError(BAD_LINE + ": no '*HH' checksum at the end")
    body = line[:star]
    try:
        got = int(line[star + 1:], 16)
    except ValueError:
        raise ValueError(BAD_LINE + ": checksum " + repr(line[star + 1:]) + " is not two hex digits")
    want = checksum(body)
    if got != want:
        raise ValueError(BAD_CHECKSUM + ": line says %02X, bytes give %02X" % (got, want))
    words = body.split(" ")
    verb = words[0]
    if not verb or "=" in verb or "*" in verb:
        raise ValueError(BAD_LINE + ": line does not start with a verb")
    fields = {}
    for word in words[1:]:
        eq = word.find("=")
        if eq <= 0 or eq == len(word) - 1:
            raise ValueError(BAD_LINE + ": " + repr(word) + " is not key=value")
        key = word[:eq]
        if key in fields:
            raise ValueError(BAD_LINE + ": field " + repr(key) + " is given twice")
        fields[key] = word[eq + 1:]
    return verb, fields


def error_code(exc):
    """The ERR code word of a ValueError raised by :func:`decode` or :func:`encode`."""
    text = str(exc)
    colon = text.find(":")
    word = text[:colon] if colon > 0 else text
    return word if word and _printable(word) and len(word) <= 20 else BAD_LINE


def int_field(fields, key, low, high):
    """``fields[key]`` as a decimal int in low..high, else ValueError("bad_line: ...")."""
    text = fields.get(key)
    if text is None:
        raise ValueError(BAD_LINE + ": field " + key + " is missing")
    if not text.isdigit():
        raise ValueError(BAD_LINE + ": field " + key + "=" + text + " is not a decimal number")
    value = int(text)
    if value < low or value > high:
        raise ValueError(BAD_LINE + ": field " + key + "=" + text + " is outside "
                         + str(low) + ".." + str(high))
    return value


BOOT_BITS = 32  # firmware 1.0 sent 16 (4 digits); hosts accept both


def boot_id(number):
    """A boot id as sent on the wire: 8 upper-case hex digits (32 random bits per power-up).

    32 bits, because the host remembers every boot id it has seen to refuse
    replayed presses: with 16, a panel that has booted a few hundred times
    would soon draw an id the host remembers, and its first presses would be
    taken for replays.
    """
    return "%08X" % (number & 0xFFFFFFFF)


def parse_boot(text):
    """A boot id's number from the wire: 8 hex digits, or 4 from firmware 1.0; else ValueError."""
    if len(text) not in (4, 8):
        raise ValueError(BAD_LINE + ": boot=" + repr(text) + " is not 8 (or 4) hex digits")
    for ch in text:
        if ch not in "0123456789ABCDEFabcdef":
            raise ValueError(BAD_LINE + ": boot=" + repr(text) + " is not 8 (or 4) hex digits")
    return int(text, 16)


class LineBuffer:
    """Splits a stream of text chunks into lines of at most MAX_LINE characters.

    ``push(chunk)`` returns the complete lines (without "\\n"). An overlong
    line is dropped up to its "\\n" and reported once as None, so the caller
    can answer ERR code=too_long or count garbage.
    """

    def __init__(self, max_len=MAX_LINE):
        self.max_len = max_len
        self._parts = []
        self._size = 0
        self._overflow = False

    def push(self, chunk):
        if isinstance(chunk, (bytes, bytearray)):
            chunk = "".join([chr(b) for b in chunk])  # latin-1: never fails; decode() rejects >126
        out = []  # type: list  # complete lines; None marks an overlong one
        start = 0
        while True:
            nl = chunk.find("\n", start)
            piece = chunk[start:] if nl < 0 else chunk[start:nl]
            if not self._overflow:
                if self._size + len(piece) > self.max_len + 1:  # +1: a "\r" before "\n" is allowed
                    self._overflow = True
                    self._parts = []
                    self._size = 0
                else:
                    self._parts.append(piece)
                    self._size += len(piece)
            if nl < 0:
                return out
            if self._overflow:
                out.append(None)
            else:
                out.append("".join(self._parts))
            self._parts = []
            self._size = 0
            self._overflow = False
            start = nl + 1
