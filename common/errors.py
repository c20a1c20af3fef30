"""Exceptions shared by every package. Every message names the offending value and the fix."""


class AntreanError(Exception):
    """Base class of every error any Antrean package raises on purpose."""


class ConfigError(AntreanError):
    """The configuration is invalid. ``problems`` lists one message per fault."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
