"""Exceptions of the edge agent. Every message names the offending value and the fix."""


class AgentError(Exception):
    """Base class of every error the agent raises on purpose."""


class AgentConfigError(AgentError):
    """The agent's part of the configuration is invalid. ``problems`` lists each fault."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class CommandError(AgentError):
    """An MQTT command was refused; nothing was changed. ``code`` is machine-readable."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


class SchemaError(AgentError, ValueError):
    """A message does not fit edge_agent.schema: a field missing, of the wrong type or out of its set."""
