"""Exceptions of the buttons package."""

from kiosk.errors import KioskError


class ButtonError(KioskError):
    """A button or LED could not be set up or driven."""


class UnknownBackend(ButtonError):
    """The configured backend name is not one we ship."""
