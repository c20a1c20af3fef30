"""Exceptions of the printer package."""

from kiosk.errors import KioskError


class PrinterError(KioskError):
    """The printer could not be opened or did not take the bytes."""


class UnknownBackend(PrinterError):
    """The configured backend name is not one we ship."""
