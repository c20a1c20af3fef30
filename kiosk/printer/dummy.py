"""An in-memory printer for tests, built on python-escpos's Dummy."""

from kiosk.printer import Printer, PrinterStatus
from kiosk.printer.errors import PrinterError


class DummyPrinter(Printer):
    """Keeps every byte it is sent in ``output``.

    Tests set ``state`` to simulate the mechanism; a state that cannot print
    makes ``send`` fail the way a real link would.
    """

    def __init__(self, profile: str | None = None):
        super().__init__()
        from escpos.printer.dummy import Dummy

        self._dummy = Dummy(profile=profile)
        self.state = PrinterStatus.OK

    @property
    def output(self) -> bytes:
        return self._dummy.output

    def clear(self) -> None:
        self._dummy.clear()

    def _open(self) -> None:
        if self.state is PrinterStatus.OFFLINE:
            raise PrinterError("dummy printer is offline")

    def _send(self, data: bytes) -> None:
        if not self.state.can_print:
            raise PrinterError(f"dummy printer refused the bytes: {self.state.value}")
        self._dummy._raw(data)

    def status(self) -> PrinterStatus:
        return self.state if self.is_open else PrinterStatus.OFFLINE
