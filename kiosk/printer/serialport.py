"""A printer on a serial port (pyserial): RS-232 adapters, USB-serial, a Pico bridge."""

import time

from common.tables import Key
from kiosk.printer.errors import PrinterError
from kiosk.printer.link import LinkLost, LinkPrinter

FLOW_CONTROL = {"none": {}, "rtscts": {"rtscts": True}, "dsrdtr": {"dsrdtr": True},
                "xonxoff": {"xonxoff": True}}
BITS_PER_BYTE = 10  # start + 8 data + stop
# pyserial's write_timeout bounds one write() call; writing in chunks makes it mean
# "the printer took nothing for this long", so a large slow image is not a fault.
CHUNK = 512
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


class SerialPrinter(LinkPrinter):
    OPTIONS = {"serial_port": Key("str", "", needed='"/dev/ttyUSB0"'),
               "baud_rate": Key("int", 9600, choices=BAUD_RATES),
               "flow_control": Key("str", "none", choices=tuple(FLOW_CONTROL)), **LinkPrinter.OPTIONS}
    ARGUMENTS = {"serial_port": "port"}

    def __init__(self, port: str, baud_rate: int = 9600, flow_control: str = "none",
                 write_timeout_ms: int = 5000, status_timeout_ms: int = 300):
        super().__init__(status_timeout_ms)
        if flow_control not in FLOW_CONTROL:
            raise PrinterError(f"flow_control {flow_control!r} is unknown; use one of {sorted(FLOW_CONTROL)}")
        self.port, self.baud_rate, self.flow_control = port, baud_rate, flow_control
        self.write_timeout = write_timeout_ms / 1000
        self._serial = None
        self._busy_until = 0.0  # when the wire will have carried everything written so far

    def _open(self) -> None:
        import serial

        try:
            self._serial = serial.Serial(self.port, self.baud_rate, timeout=0, exclusive=True,
                                         write_timeout=self.write_timeout, **FLOW_CONTROL[self.flow_control])
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PrinterError(f"cannot open serial printer at {self.port!r}: {exc}; "
                               "check the cable and printer.serial_port") from None

    def _close(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except OSError:
                pass  # already gone with the cable

    def _write(self, data: bytes) -> None:
        for start in range(0, len(data), CHUNK):
            self._write_chunk(data[start:start + CHUNK])

    def _write_chunk(self, data: bytes) -> None:
        import serial

        try:
            self._serial.write(data)
        except serial.SerialTimeoutException:
            raise PrinterError(f"serial printer {self.port!r} took no data for {self.write_timeout:.1f} s "
                               "(flow control holding? printer busy?)") from None
        except (serial.SerialException, OSError) as exc:
            raise LinkLost(f"serial printer {self.port!r} went away: {exc}") from None
        now = time.monotonic()
        self._busy_until = max(now, self._busy_until) + len(data) * BITS_PER_BYTE / self.baud_rate

    def _read(self, n: int, deadline: float) -> bytes:
        import serial

        try:
            self._serial.timeout = max(0.0, deadline - time.monotonic())
            return self._serial.read(n)
        except (serial.SerialException, OSError) as exc:
            raise LinkLost(f"serial printer {self.port!r} went away: {exc}") from None

    def _discard_input(self) -> None:
        import termios

        try:
            self._serial.reset_input_buffer()
        except (OSError, termios.error) as exc:  # termios.error is no OSError: a hung-up tty raises it
            raise LinkLost(f"serial printer {self.port!r} went away: {exc}") from None

    def _answer_timeout(self) -> float:
        # The answer queues behind the ticket still on the wire.
        return self.status_timeout + max(0.0, self._busy_until - time.monotonic())
