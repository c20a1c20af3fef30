"""Exceptions of the kiosk package. Every message names the offending value and the fix."""


from common.errors import AntreanError, ConfigError

__all__ = ["KioskError", "ConfigError", "LedgerError", "QuotaError", "TicketNotFound"]


class KioskError(AntreanError):
    """Base class of every error the kiosk raises on purpose."""


class LedgerError(KioskError):
    """The ledger refused an operation; nothing was changed."""


class QuotaError(LedgerError):
    """A quota change would break a rule (e.g. below what is already issued)."""


class TicketNotFound(LedgerError):
    """No ticket matches the given service, day and number."""
