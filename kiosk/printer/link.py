"""What serial, TCP and USB printers share: a two-way link that can ask DLE EOT status."""

import logging
import time

from common.tables import Key
from kiosk.printer import Printer, PrinterStatus
from kiosk.printer import escpos_status as dle
from kiosk.printer.errors import PrinterError

log = logging.getLogger("kiosk.printer")


class LinkLost(PrinterError):
    """The link went away (cable pulled, printer off, connection reset)."""


class LinkPrinter(Printer):
    """A printer on a two-way link. Subclasses move bytes; this class asks for status.

    ``status()`` never waits longer than ``status_timeout_ms`` per answer (plus
    the time the link still needs to carry bytes already sent). No answer is
    UNKNOWN, never a hang; a lost link is OFFLINE and closes the link so the
    next check reopens it.
    """

    OPTIONS = {"write_timeout_ms": Key("int", 5000, limits=(1, 120_000)),
               "status_timeout_ms": Key("int", 300, limits=(1, 10_000))}
    WRITE_MAY_STALL = True

    def __init__(self, status_timeout_ms: int = 300):
        super().__init__()
        self.status_timeout = status_timeout_ms / 1000
        self.garbage_answers = 0  # bytes that were not status answers, for the technician

    def status(self) -> PrinterStatus:
        if not self.is_open:
            return PrinterStatus.OFFLINE
        try:
            return self._ask_status()
        except PrinterError as exc:
            log.warning("printer link lost", extra={"error": str(exc)})
            self.close()
            return PrinterStatus.OFFLINE

    def _ask_status(self) -> PrinterStatus:
        self._discard_input()
        printer = self._ask(dle.PRINTER)
        if printer is None:
            return PrinterStatus.UNKNOWN
        cause = self._ask(dle.OFFLINE_CAUSE) if printer & 0x08 else None
        return dle.interpret(printer, cause, self._ask(dle.PAPER))

    def _ask(self, n: int) -> int | None:
        self._write(dle.query(n))
        answer = self._read(1, time.monotonic() + self._answer_timeout())
        if not answer:
            return None
        if not dle.is_status_byte(answer[0]):
            self.garbage_answers += 1
            return None
        return answer[0]

    def _answer_timeout(self) -> float:
        return self.status_timeout

    def _send(self, data: bytes) -> None:
        self._write(data)

    # For subclasses: raise LinkLost when the link is gone, PrinterError on a timeout.
    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _read(self, n: int, deadline: float) -> bytes:
        """Up to ``n`` bytes, or b"" if none came by ``deadline`` (time.monotonic())."""
        raise NotImplementedError

    def _discard_input(self) -> None:
        """Drop stale bytes (a late answer to an earlier query) before asking again."""
