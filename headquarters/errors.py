"""Exceptions of the headquarters package. Every message names the offending value and the fix."""

from common.errors import AntreanError, ConfigError

__all__ = ["ConfigError", "HeadquartersError", "StoreError"]


class HeadquartersError(AntreanError):
    """Base class of every error the headquarters package raises on purpose."""


class StoreError(HeadquartersError):
    """The store cannot be opened or used (a bad URL, a missing driver, a schema from a newer version)."""
