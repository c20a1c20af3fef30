"""The agent's states as ``str`` enums: each value is the string the wire, the disk and the logs have always used.

Closed sets: a new value is a new schema version (docs/mqtt.md, "Versions").
edge_agent.schema re-exports them, so a receiver takes them from there.
Standard library only.
"""

import enum


class TargetState(enum.StrEnum):
    """A network target's state (edge_agent/network.py)."""

    UNKNOWN = "unknown"  # nothing decided yet (just started)
    UP = "up"
    DEGRADED = "degraded"  # answers, but loses packets or is slow, or is flapping
    DOWN = "down"
    MAINTENANCE = "maintenance"  # announced by the centre: an outage is expected


class TargetRole(enum.StrEnum):
    GATEWAY = "gateway"
    DNS = "dns"
    CENTRAL = "central"
    INTERNET = "internet"
    OTHER = "other"


class OfficeStatus(enum.StrEnum):
    """The office's verdict over all targets, worst first."""

    OUTAGE = "outage"
    MAINTENANCE = "maintenance"
    DEGRADED = "degraded"
    UNKNOWN = "unknown"
    OK = "ok"


class ServiceState(enum.StrEnum):
    """A kiosk service as the network allows it."""

    STOPPED = "stopped"  # a target it needs is down
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"
    RUNNING = "running"


class CauseCode(enum.StrEnum):
    """The likeliest single cause of what is down."""

    LOCAL_LINE = "local_line"
    UPLINK = "uplink"
    CENTRAL = "central"
    DNS = "dns"
    INTERNET = "internet"
    CENTRAL_PARTIAL = "central_partial"
    OTHER = "other"


class Severity(enum.StrEnum):
    """An announcement's severity on the lobby page."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class ProcessState(enum.StrEnum):
    """Whether the kiosk process runs (kiosk/liveness.py)."""

    RUNNING = "running"
    NOT_RUNNING = "not_running"
    HUNG = "hung"


class QuotaScope(enum.StrEnum):
    DAY = "day"  # the last place of a day was taken
    HORIZON = "horizon"  # no day within the booking horizon has room


class LinkStatus(enum.StrEnum):
    """The plain-text ``status`` topic (also the Last Will)."""

    ONLINE = "online"
    OFFLINE = "offline"


class OutboxKind(enum.StrEnum):
    """How the agent's disk outbox treats a message; not on the wire (the retain flag tells states)."""

    EVENT = "event"  # never dropped
    CHANGE = "change"  # a state change: never dropped
    SAMPLE = "sample"  # a periodic reading: the oldest go first when the outbox is full
