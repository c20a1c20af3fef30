"""What the edge agent sends over MQTT, typed and versioned: import this to read it.

Pure standard library (no paho, no kiosk), so a receiver -- headquarters'
fleet monitor, a test, a technician's script -- parses the agent's messages
with the very classes the agent builds them from::

    from edge_agent import schema
    message = schema.parse(msg.topic, msg.payload)   # SchemaError names the bad value
    if isinstance(message.body, schema.OutageStarted): ...

Every JSON message but ``status`` and the Home Assistant discovery config is
*enveloped* (:class:`Envelope`: who sent it, from which run, which message,
when made) and then carries its body's fields. docs/mqtt.md describes every
topic and field.

Compatibility (docs/mqtt.md, "Versions"): this is schema version
``SCHEMA_VERSION``. Within a version changes are additive only: a new field
(receivers ignore fields they do not know), a new event kind (parsed as
:class:`UnknownEvent`), a new state topic, a new alert or error code. Removing
or renaming a field, changing its type or meaning, or a new value of one of the
closed enums below is a new version: its messages carry ``schema_version`` in
the envelope, and :func:`parse` refuses a version newer than its own.
"""

import dataclasses
import functools
from dataclasses import dataclass
from typing import ClassVar

from edge_agent.errors import SchemaError
from edge_agent.schema_codec import Body, decode, dump, load, short, wire  # noqa: F401 (dump: for receivers)
from edge_agent.states import (  # noqa: F401 (re-exported: receivers take them from here)
    CauseCode,
    LinkStatus,
    OfficeStatus,
    OutboxKind,
    ProcessState,
    QuotaScope,
    ServiceState,
    Severity,
    TargetRole,
    TargetState,
)

SCHEMA_VERSION = 1
# The MQTT v5 user property on a message that waited in the outbox (the body says "historical": true).
HISTORICAL_PROPERTY = ("historical", "1")


# ---------------------------------------------------------------- the envelope

@dataclass(frozen=True)
class Envelope(Body):
    """The fields every enveloped message starts with. Receivers dedupe by ``(boot_id, seq)``.

    ``historical`` is true for a message made while the agent had no connection (it waited in the
    outbox); on the wire it comes after the body's fields, and only when true."""

    boot_id: str  # random, made at each start of the agent
    seq: int  # per boot_id, taken when the message was made: a gap is a message that never left
    at: str  # when the message was made, ISO 8601 with offset
    kiosk_id: str
    office_id: str
    historical: bool = wire(omit_empty=True, default=False)


ENVELOPE_KEYS = frozenset(f.name for f in dataclasses.fields(Envelope)) | {"schema_version"}


# ---------------------------------------------------------------- health

@dataclass(frozen=True)
class Software(Body):
    antrean: str
    python: str


@dataclass(frozen=True)
class ThrottleFlags(Body):
    """The Pi firmware's throttling conditions (``vcgencmd get_throttled``)."""

    under_voltage: bool
    arm_freq_capped: bool
    throttled: bool
    soft_temp_limit: bool


@dataclass(frozen=True)
class Throttling(Body):
    raw: str  # the firmware's bits in hex, e.g. "0x50000"
    now: ThrottleFlags
    since_boot: ThrottleFlags  # sticky until reboot: a weak power supply shows here first


@dataclass(frozen=True)
class Memory(Body):
    total_bytes: int
    available_bytes: int
    used_percent: float


@dataclass(frozen=True)
class Disk(Body):
    """The data partition's space."""

    path: str
    free_bytes: int
    total_bytes: int
    free_percent: float


@dataclass(frozen=True)
class DataMount(Body):
    mount_point: str
    device: str
    fs: str
    readonly: bool


@dataclass(frozen=True)
class MmcErrors(Body):
    """SD/MMC fault lines in the kernel log."""

    count: int
    last: str | None
    source: str  # /dev/kmsg or dmesg


@dataclass(frozen=True)
class Boots(Body):
    """Unclean boots (power cuts) recorded by the agent."""

    after_unclean: bool
    unclean_total: int
    unclean_30d: int
    boots_recorded: int
    agent_starts_this_boot: int | None


@dataclass(frozen=True)
class Health(Body):
    """``<base>/health``: the device and the kiosk. A source is null when missing here, with its reason
    under the same key in ``unavailable``. ``kiosk`` is what ``kiosk status`` shows (the kiosk's own
    format, given as a dict; its keys are in docs/mqtt.md)."""

    TOPIC: ClassVar[str] = "health"
    schema: int
    collected_at: str
    alerts: tuple[str, ...]  # codes, worst first; an open set: new codes may come within a version
    software: Software
    system_boot_id: str | None
    uptime_s: int | None
    model: str | None
    cpu_temp_c: float | None
    throttling: Throttling | None
    load: tuple[float, ...] | None  # 1, 5 and 15 minutes
    memory: Memory | None
    disk: Disk | None
    data_mount: DataMount | None
    mmc_errors: MmcErrors | None
    clock_synced: bool | None
    boots: Boots | None
    kiosk: dict | None
    unavailable: dict[str, str]
    collect_ms: float


# ---------------------------------------------------------------- network

@dataclass(frozen=True)
class Cause(Body):
    code: CauseCode
    text: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class ProbeReading(Body):
    """The last round of one target's probe."""

    ok: bool
    at: str
    detail: str
    rtt_ms: float | None
    loss: float | None
    jitter_ms: float | None
    cert_days_left: int | None
    inconclusive: bool


@dataclass(frozen=True)
class TargetStatus(Body):
    state: TargetState
    since: str | None
    reason: str
    role: TargetRole
    flapping: bool
    maintenance_until: str | None
    last: ProbeReading | None


@dataclass(frozen=True)
class Transition(Body):
    target: str
    from_state: TargetState = wire("from")
    to_state: TargetState = wire("to")
    at: str = wire()
    reason: str = wire()


@dataclass(frozen=True)
class ServiceStatus(Body):
    code: str
    name: str
    status: ServiceState
    blocked_by: tuple[str, ...]  # down targets, or in maintenance when none is down
    degraded_by: tuple[str, ...]


@dataclass(frozen=True)
class Verdict(Body):
    status: OfficeStatus
    cause: Cause | None
    down: tuple[str, ...]
    degraded: tuple[str, ...]
    maintenance: tuple[str, ...]
    unknown: tuple[str, ...]
    services: tuple[ServiceStatus, ...]
    stopped_services: tuple[str, ...]


@dataclass(frozen=True)
class Network(Body):
    """``<base>/network``: one round of probes."""

    TOPIC: ClassVar[str] = "network"
    started: str
    ended: str
    transitions: tuple[Transition, ...]
    targets: dict[str, TargetStatus]
    verdict: Verdict


# ---------------------------------------------------------------- announcement

@dataclass(frozen=True)
class Announcement(Body):
    """``<base>/announcement``: the lobby page's announcement, or ``{"active": false}`` when none."""

    TOPIC: ClassVar[str] = "announcement"
    text: str | None = wire(omit_empty=True, default=None)
    severity: Severity | None = wire(omit_empty=True, default=None)
    announced_at: str | None = wire(omit_empty=True, default=None)
    by: str | None = wire(omit_empty=True, default=None)  # set from the lobby's staff page
    until: str | None = wire(omit_empty=True, default=None)
    maintenance_targets: tuple[str, ...] = wire(omit_empty=True, default=())
    active: bool = wire(default=True)

    def __post_init__(self):
        if self.active and (self.text is None or self.severity is None):
            raise SchemaError(f"an active announcement needs text and severity, got {self.text!r}, "
                              f"{self.severity!r}")

    def to_dict(self) -> dict:
        if not self.active:
            return {"active": False}
        return {k: v for k, v in super().to_dict().items() if k != "active"}  # said only when false

    @classmethod
    def none(cls) -> "Announcement":
        return cls(active=False)

    @classmethod
    def from_dict(cls, data, where: str | None = None):
        if isinstance(data, dict) and data.get("active", True) is False:
            return cls.none()
        return super().from_dict(data, where)


STATES = {c.TOPIC: c for c in (Health, Network, Announcement)}


# ---------------------------------------------------------------- events

@dataclass(frozen=True)
class _Outage(Body):
    """What both outage events say: the target's change, the office's likely cause, the outage's start."""

    target: str
    from_state: TargetState = wire("from")
    to_state: TargetState = wire("to")
    reason: str = wire()
    changed_at: str = wire()  # when the target changed; the envelope's ``at`` is when this was made
    cause: Cause | None = wire()
    started_at: str | None = wire()  # the outage's real start, from the outage log (kept across restarts)


@dataclass(frozen=True)
class OutageStarted(_Outage):
    """A target went down (after fail_threshold failed rounds)."""

    KIND: ClassVar[str] = "outage_started"
    stopped_services: tuple[str, ...] = wire()


@dataclass(frozen=True)
class OutageEnded(_Outage):
    """The target answers again (success_threshold good rounds), or its maintenance began."""

    KIND: ClassVar[str] = "outage_ended"


@dataclass(frozen=True)
class PrinterFault(Body):
    """Every change of the printer's state, relayed from the kiosk's ledger."""

    KIND: ClassVar[str] = "printer_fault"
    status: str  # kiosk printer state (kiosk.seam's PrinterStatus values)
    kiosk_event_id: int
    kiosk_at: str
    fault: bool


@dataclass(frozen=True)
class DayFull(Body):
    """``quota_exhausted`` with scope ``day``: the last place of a day was taken; tickets go to later days."""

    KIND: ClassVar[str] = "quota_exhausted"
    quota: int  # a relayed event's own fields come in name order, as the ledger keeps them
    service: str
    service_day: str
    kiosk_event_id: int
    kiosk_at: str
    scope: QuotaScope = wire(default=QuotaScope.DAY)


@dataclass(frozen=True)
class HorizonFull(Body):
    """``quota_exhausted`` with scope ``horizon``: no day within the booking horizon has room."""

    KIND: ClassVar[str] = "quota_exhausted"
    last_day: str
    service: str
    kiosk_event_id: int
    kiosk_at: str
    scope: QuotaScope = wire(default=QuotaScope.HORIZON)


@dataclass(frozen=True)
class BurstAlarm(Body):
    """More tickets of one service within the window than burst_max_tickets: a stuck or abused button."""

    KIND: ClassVar[str] = "burst_alarm"
    service: str
    tickets: int
    window_s: float
    kiosk_event_id: int
    kiosk_at: str


@dataclass(frozen=True)
class ClockSuspect(Body):
    """The kiosk distrusts its system clock and issues from its safe clock (docs/architecture.md)."""

    KIND: ClassVar[str] = "clock_suspect"
    day: str | None
    reason: str | None
    suspect: bool
    verdict: str | None  # the kiosk's clock verdict: too_early, behind, unsynced_step, step_back, leap
    kiosk_event_id: int
    kiosk_at: str


@dataclass(frozen=True)
class ClockConfirmed(Body):
    """Staff took a clock the kiosk held; ``was`` is why it was suspect."""

    KIND: ClassVar[str] = "clock_confirmed"
    now: str
    was: str | None
    kiosk_event_id: int
    kiosk_at: str


@dataclass(frozen=True)
class ButtonPanel(Body):
    """The USB button panel was lost (no heartbeat, unplugged) or came back."""

    KIND: ClassVar[str] = "button_panel"
    connected: bool
    error: str | None
    kiosk_event_id: int
    kiosk_at: str
    fault: bool


@dataclass(frozen=True)
class KioskProcess(Body):
    """The kiosk stopped, crashed or hung, or runs again; a crash loop is summed (``changes``, ``restarts``)."""

    KIND: ClassVar[str] = "kiosk_process"
    state: ProcessState
    detail: str
    ended: str | None
    heartbeat_at: str | None
    heartbeat_age_s: float | None
    stale_after_s: float
    was: ProcessState | None
    fault: bool
    changes: int
    restarts: int


@dataclass(frozen=True)
class UncleanBoot(Body):
    """A new system boot after one that never shut the agent down cleanly (a power cut), once per boot."""

    KIND: ClassVar[str] = "unclean_boot"
    previous_boot_id: str | None
    reason: str | None


@dataclass(frozen=True)
class UnknownEvent:
    """An event of a kind this module does not know (a newer agent): its fields as sent."""

    kind: str
    fields: dict

    def to_dict(self) -> dict:
        return dict(self.fields)


EVENTS = {c.KIND: c for c in (OutageStarted, OutageEnded, PrinterFault, BurstAlarm, ClockSuspect,
                              ClockConfirmed, ButtonPanel, KioskProcess, UncleanBoot)}
QUOTA_SCOPES = {QuotaScope.DAY: DayFull, QuotaScope.HORIZON: HorizonFull}
Event = (OutageStarted | OutageEnded | PrinterFault | DayFull | HorizonFull | BurstAlarm | ClockSuspect
         | ClockConfirmed | ButtonPanel | KioskProcess | UncleanBoot | UnknownEvent)


def event_from_dict(kind: str, data) -> Event:
    """The body of ``<base>/events/<kind>``."""
    where = f"events/{kind}"
    if kind == DayFull.KIND:
        scope = data.get("scope") if isinstance(data, dict) else None
        return QUOTA_SCOPES[decode(QuotaScope, scope, f"{where}.scope")].from_dict(data, where)
    if kind in EVENTS:
        return EVENTS[kind].from_dict(data, where)
    if not isinstance(data, dict):
        raise SchemaError(f"{where} must be a JSON object, got {short(data)}")
    return UnknownEvent(kind, data)


# ---------------------------------------------------------------- command answers and discovery

@dataclass(frozen=True)
class ReplyError(Body):
    code: str  # an open set (docs/mqtt.md lists them): new codes may come within a version
    message: str


@dataclass(frozen=True)
class Reply(Body):
    """``<base>/reply/<technician>``: the answer to a ``cmd/<verb>`` request."""

    ok: bool
    verb: str
    result: dict | None = wire(omit_empty=True, default=None)  # each verb's own (docs/mqtt.md)
    error: ReplyError | None = wire(omit_empty=True, default=None)

    def __post_init__(self):
        if (self.result is None) == self.ok or (self.error is None) != self.ok:
            raise SchemaError(f"a reply with ok {self.ok!r} needs {'a result' if self.ok else 'an error'} and not "
                              f"the other, got result {short(self.result)}, error {short(self.error)}")


@dataclass(frozen=True)
class DiscoveryConfig(Body):
    """``homeassistant/device/<office>-<kiosk>/config``: Home Assistant's schema, not enveloped."""

    dev: dict
    o: dict
    availability_topic: str
    payload_available: LinkStatus
    payload_not_available: LinkStatus
    qos: int
    cmps: dict[str, dict]


# ---------------------------------------------------------------- topics and whole messages

@dataclass(frozen=True)
class Message:
    """One message as a receiver got it: where from, its envelope (None for status and discovery), its body.

    For the discovery config ``kiosk_id`` is Home Assistant's device id (``<office>-<kiosk>``) and
    ``office_id`` is empty: its topic names no office."""

    topic: str
    office_id: str
    kiosk_id: str
    envelope: Envelope | None
    body: object


def topic_base(office_id: str, kiosk_id: str) -> str:
    return f"antrean/{office_id}/{kiosk_id}"


def parse(topic: str, payload: bytes | str) -> Message:
    """Any message the agent publishes, from its topic and payload; SchemaError names what is wrong."""
    levels = topic.split("/")
    if levels[:2] == ["homeassistant", "device"] and len(levels) == 4 and levels[3] == "config":
        return Message(topic, "", levels[2], None, DiscoveryConfig.from_dict(load(payload), "discovery"))
    if len(levels) < 4 or levels[0] != "antrean":
        raise SchemaError(f"topic {topic!r} is not one of the agent's: antrean/<office>/<kiosk>/...")
    office_id, kiosk_id, rest = levels[1], levels[2], levels[3:]
    if rest == ["status"]:
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        return Message(topic, office_id, kiosk_id, None, decode(LinkStatus, text, "status"))
    read = _reader(rest, topic)
    data = load(payload)
    envelope = _envelope(data, topic)
    body = read({k: v for k, v in data.items() if k not in ENVELOPE_KEYS})
    return Message(topic, office_id, kiosk_id, envelope, body)


def _envelope(data: dict, topic: str) -> Envelope:
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version > SCHEMA_VERSION:
        raise SchemaError(f"{topic}: schema_version {short(version)} is newer than this reader's "
                          f"{SCHEMA_VERSION}; update edge_agent.schema")
    return Envelope.from_dict(data, f"{topic} envelope")


def _reader(rest: list[str], topic: str):
    """How to read the body of a topic under antrean/<office>/<kiosk>/."""
    if len(rest) == 1 and rest[0] in STATES:
        return functools.partial(STATES[rest[0]].from_dict, where=topic)
    if len(rest) == 2 and rest[0] == "events":
        return functools.partial(event_from_dict, rest[1])
    if len(rest) == 2 and rest[0] == "reply":
        return functools.partial(Reply.from_dict, where=topic)
    raise SchemaError(f"topic {topic!r} is none the agent publishes: status, "
                      f"{', '.join(STATES)}, events/<kind> or reply/<technician>")


def body_fields(body) -> dict:
    """A body's JSON fields: a schema body's, or a dict's (tools and tests send ad-hoc bodies)."""
    if isinstance(body, Body | UnknownEvent):
        fields = body.to_dict()
    elif isinstance(body, dict):
        fields = dict(body)
    else:
        raise TypeError(f"a message body must be a schema body or a dict, got {type(body).__name__}: {body!r}")
    clash = ENVELOPE_KEYS & fields.keys()
    if clash:
        raise ValueError(f"body keys {sorted(clash)} are envelope fields; rename them in the body")
    return fields


def wire_dict(envelope: Envelope, body) -> dict:
    """The JSON object of an enveloped message: the envelope first, then the body, ``historical`` last."""
    head = dataclasses.replace(envelope, historical=False).to_dict()
    return {**head, **body_fields(body), **({"historical": True} if envelope.historical else {})}
