"""Exceptions of the printer package."""

from kiosk.errors import KioskError


class PrinterError(KioskError):
    """The printer could not be opened or did not take the bytes."""


class UnknownBackend(PrinterError):
    """The configured backend name is not one we ship."""


class DecodeError(KioskError):
    """ESC/POS bytes the decoder does not understand; ``offset`` and ``byte`` say where and what."""

    def __init__(self, message: str, offset: int | None = None, byte: int | None = None):
        super().__init__(message)
        self.offset = offset
        self.byte = byte
