"""Exceptions of the kiosk package. Every message names the offending value and the fix."""


class KioskError(Exception):
    """Base class of every error the kiosk raises on purpose."""


class ConfigError(KioskError):
    """The configuration is invalid. ``problems`` lists one message per fault."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class LedgerError(KioskError):
    """The ledger refused an operation; nothing was changed."""


class QuotaError(LedgerError):
    """A quota change would break a rule (e.g. below what is already issued)."""


class TicketNotFound(LedgerError):
    """No ticket matches the given service, day and number."""
