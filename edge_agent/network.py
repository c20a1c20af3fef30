"""Per-target health with hysteresis, the office's verdict, and the monitor that runs probe rounds.

A target's state is one of ``unknown`` (nothing decided yet), ``up``,
``degraded``, ``down`` and ``maintenance``. The rules, and why:

- A *round* (one probe run, several packets) fails only when the probe
  says so: for ICMP and DNS that is no reply at all (``Target.fail_loss``
  1.0). At 15 % random loss all five of a round's packets are lost once in
  13,000 rounds, so random loss alone essentially never fails a round.
- ``fail_after`` (3) failed rounds in a row make a target down, and
  ``recover_after`` (2) good rounds in a row make it up again: one lost
  round never raises an outage. While a decision is pending, rounds start
  ``retry_interval_s`` (2 s) apart, or back to back if a round takes longer,
  instead of every ``interval_s`` (10 s), and never further apart than
  ``interval_s`` when that is the shorter. A failing round ends within its
  budget (ICMP and DNS 1.8 s, TCP 2.4 s, HTTP 3 s by default), so an outage
  is confirmed within 10 + 3 x 3 = 19 s of its start at worst.
- Degraded is judged over a window of the last ``degrade_window`` good
  rounds (60, about 10 minutes, 300 pings): it is entered when the
  window's loss reaches ``Target.degraded_loss`` or its median RTT reaches
  ``Target.degraded_rtt_ms`` (after at least ``degrade_min_rounds``), and
  left only when loss falls below a quarter of that (5 % for the default
  20 %) and RTT below 80 % of it. One lossy round cannot flip it, and a
  loss rate near the limit does not toggle it: with a narrower band or a
  30-round window, 15 % random loss against the 20 % limit toggled
  between up and degraded 8 to 300 times a week in simulation; with these
  settings, at most once.
- A target that went down ``flap_downs`` (3) times within ``flap_window_s``
  (1 h) is flapping: it counts as up again only after ``flap_stable_s``
  (5 min) without a failed round, so a bad cable cannot flood anyone.
- Maintenance is set from outside (the centre's notice) and hides the
  target's health until its end; the health is still tracked underneath,
  so a target still down when maintenance ends is reported down then.

Time is passed in everywhere (epoch seconds): the logic here never reads a clock itself,
except :class:`NetworkMonitor`, whose clock is a parameter.
"""

import datetime as dt
import logging
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from edge_agent.errors import AgentConfigError, AgentError
from edge_agent.probes import ProbeResult, Target, run_probe

UNKNOWN, UP, DEGRADED, DOWN, MAINTENANCE = "unknown", "up", "degraded", "down", "maintenance"
STATES = (UNKNOWN, UP, DEGRADED, DOWN, MAINTENANCE)
LOSS_CLEAR = 0.25  # degraded by loss ends below a quarter of the limit
RTT_CLEAR = 0.8  # degraded by RTT ends below 80 % of the limit
ROUND_GRACE_S = 0.5  # on top of the slowest target's budget, for thread start and scheduling

log = logging.getLogger(__name__)


class UnknownTargetError(AgentError):
    """A name given to the monitor is not one of its targets."""


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC, for JSON."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Policy:
    """How rounds are scheduled and judged; the same for every target."""

    interval_s: float = 10.0
    retry_interval_s: float = 2.0
    fail_after: int = 3
    recover_after: int = 2
    degrade_window: int = 60
    degrade_min_rounds: int = 6
    flap_window_s: float = 3600.0
    flap_downs: int = 3
    flap_stable_s: float = 300.0

    def __post_init__(self):
        problems = []
        for name in ("interval_s", "retry_interval_s", "flap_window_s", "flap_stable_s"):
            if not getattr(self, name) > 0:
                problems.append(f"network policy: {name} {getattr(self, name)!r} must be above 0")
        for name in ("fail_after", "recover_after", "degrade_window", "degrade_min_rounds", "flap_downs"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                problems.append(f"network policy: {name} {value!r} must be a whole number of at least 1")
        if not problems and self.degrade_min_rounds > self.degrade_window:
            problems.append(f"network policy: degrade_min_rounds {self.degrade_min_rounds} must not exceed "
                            f"degrade_window {self.degrade_window}")
        if problems:
            raise AgentConfigError(problems)

    def next_start(self, last_start: float, last_end: float, pending: bool) -> float:
        """When the next round should start: soon after the last if a decision is pending.

        Both count from the last round's start, so a slow failing round
        (a dark HTTP target waits out its timeout) does not add its own
        length to the confirmation; rounds never overlap.
        """
        if pending:
            # Confirming means sooner, never later: with an interval_s below retry_interval_s, keep the interval.
            return max(last_end, last_start + min(self.retry_interval_s, self.interval_s))
        return max(last_end, last_start + self.interval_s)


@dataclass(frozen=True)
class Transition:
    target: str
    from_state: str
    to_state: str
    at: float
    reason: str

    def to_dict(self) -> dict:
        return {"target": self.target, "from": self.from_state, "to": self.to_state,
                "at": iso(self.at), "reason": self.reason}


class TargetMachine:
    """The state of one target, fed one round's result at a time."""

    def __init__(self, target: Target, policy: Policy = Policy()):
        self.target = target
        self.policy = policy
        self.state = UNKNOWN
        self.since: float | None = None
        self.reason = "no round yet"  # why the target is in its current state
        self.last: ProbeResult | None = None
        self.maintenance_until: float | None = None
        self._health = UNKNOWN  # what the probes say, maintenance aside
        self._why = "no round yet"
        self._fails = 0
        self._goods = 0
        self._good_since: float | None = None
        self._window: deque = deque(maxlen=policy.degrade_window)  # (loss, rtt_ms) of good rounds
        self._downs: deque = deque()  # when it went down lately, for flap damping
        self._maintenance_why = ""

    @property
    def pending(self) -> bool:
        """A change is being confirmed: the monitor should probe again soon."""
        if self._health == DOWN:
            return self._goods > 0 and not self.flapping
        return self._fails > 0

    @property
    def flapping(self) -> bool:
        return len(self._downs) >= self.policy.flap_downs

    def observe(self, result: ProbeResult, now: float) -> Transition | None:
        """Take one round's result; the transition it causes, if any."""
        self.last = result
        self._forget_old_downs(now)
        if not result.inconclusive:  # a probe that could not run says nothing about the target
            if result.ok:
                self._good(result, now)
            else:
                self._bad(result, now)
        return self._publish(now)

    def set_maintenance(self, until: float | None, now: float, why: str = "") -> Transition | None:
        """Maintenance until ``until`` (epoch s); None or a past time ends it."""
        self.maintenance_until = until if until is not None and until > now else None
        self._maintenance_why = why
        return self._publish(now)

    def tick(self, now: float) -> Transition | None:
        """Let time pass without a round: ends a maintenance that is over."""
        return self._publish(now)

    def status(self) -> dict:
        last = self.last.to_dict() if self.last else None
        if last:
            last["at"] = iso(last["at"])
        return {"state": self.state, "since": iso(self.since), "reason": self.reason, "role": self.target.role,
                "flapping": self.flapping, "maintenance_until": iso(self.maintenance_until), "last": last}

    def _bad(self, result: ProbeResult, now: float) -> None:
        self._fails += 1
        self._goods, self._good_since = 0, None
        if self._health != DOWN and self._fails >= self.policy.fail_after:
            self._health = DOWN
            self._why = f"{self._fails} failed rounds in a row, last: {result.detail}"
            self._downs.append(now)
            self._window.clear()  # the quality before the outage says nothing about after it

    def _good(self, result: ProbeResult, now: float) -> None:
        self._fails = 0
        self._goods += 1
        if self._good_since is None:
            self._good_since = now
        self._window.append((result.loss, result.rtt_ms))
        if self._health == DOWN:
            if not self._recovered(now):
                return
            self._health, self._why = UP, f"answering again: {result.detail}"
        elif self._health == UNKNOWN:
            self._health, self._why = UP, f"answering: {result.detail}"
        self._judge_quality()

    def _recovered(self, now: float) -> bool:
        if self._goods < self.policy.recover_after:
            return False
        return not self.flapping or now - self._good_since >= self.policy.flap_stable_s

    def _judge_quality(self) -> None:
        t, window = self.target, self._window
        losses = [loss for loss, _ in window if loss is not None]
        rtts = [rtt for _, rtt in window if rtt is not None]
        loss = statistics.fmean(losses) if losses else None
        rtt = statistics.median(rtts) if rtts else None
        over = f"over the last {len(window)} rounds"
        if self._health == UP and len(window) >= self.policy.degrade_min_rounds:
            if loss is not None and loss >= t.degraded_loss:
                self._health, self._why = DEGRADED, f"loss {loss:.0%} {over} (limit {t.degraded_loss:.0%})"
            elif rtt is not None and rtt >= t.degraded_rtt_ms:
                self._health, self._why = DEGRADED, f"median RTT {rtt:.0f} ms {over} (limit {t.degraded_rtt_ms:g} ms)"
        elif self._health == DEGRADED:
            loss_ok = loss is None or loss < t.degraded_loss * LOSS_CLEAR
            rtt_ok = rtt is None or rtt < t.degraded_rtt_ms * RTT_CLEAR
            if loss_ok and rtt_ok:
                rtt_text = f", median RTT {rtt:.0f} ms" if rtt is not None else ""
                self._health = UP
                self._why = f"loss {loss or 0:.0%}{rtt_text} {over}"

    def _forget_old_downs(self, now: float) -> None:
        while self._downs and now - self._downs[0] > self.policy.flap_window_s:
            self._downs.popleft()

    def _publish(self, now: float) -> Transition | None:
        if self.maintenance_until is not None and now >= self.maintenance_until:
            self.maintenance_until = None
        shown, why = self._health, self._why
        if self.maintenance_until is not None:
            shown = MAINTENANCE
            why = f"maintenance until {iso(self.maintenance_until)}" + (f": {self._maintenance_why}"
                                                                         if self._maintenance_why else "")
        elif self.state == MAINTENANCE:
            why = f"maintenance over; {why}"
        if self.flapping and shown == DOWN:
            why = f"{why} (flapping: {len(self._downs)} outages within {self.policy.flap_window_s / 60:g} min)"
        if shown == self.state:
            return None
        change = Transition(self.target.name, self.state, shown, now, why)
        self.state, self.since, self.reason = shown, now, why
        return change


@dataclass(frozen=True)
class RoundReport:
    """What one round found: every transition it caused, the state of each target, the office's verdict."""

    started: float
    ended: float
    transitions: tuple[Transition, ...]
    snapshot: dict = field(repr=False)
    verdict: dict = field(repr=False)

    def to_dict(self) -> dict:
        return {"started": iso(self.started), "ended": iso(self.ended),
                "transitions": [t.to_dict() for t in self.transitions],
                "targets": self.snapshot, "verdict": self.verdict}


class NetworkMonitor:
    """Runs rounds of every target's probe concurrently and keeps their state machines.

    ``services`` are objects with ``code``, ``name`` and ``needs_targets``
    (``kiosk.config.Service`` fits). ``probe(target, at)`` and ``clock`` are
    parameters so tests and benchmarks can replace the network and time.
    """

    def __init__(self, targets, policy: Policy = Policy(), services=(), probe=run_probe, clock=time.time):
        targets = list(targets)
        names = [t.name for t in targets]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise AgentConfigError([f"target names must be unique; rename the repeated {', '.join(twice)}"])
        self.targets = targets
        self.policy = policy
        self.services = tuple(services)
        self._probe = probe
        self._clock = clock
        self._machines = {t.name: TargetMachine(t, policy) for t in targets}
        self._running: dict[str, threading.Thread] = {}  # probes that overran their round
        self._lock = threading.Lock()
        self._last_start: float | None = None
        self._last_end: float | None = None

    def run_round(self) -> RoundReport:
        """Probe every target once, at the same time; return when all answered or the slowest budget ran out."""
        started = self._clock()
        results = self._probe_all(started)
        ended = self._clock()
        with self._lock:
            changes = [m.observe(results[name], ended) for name, m in self._machines.items()]
            self._last_start, self._last_end = started, ended
            return self._report(started, ended, changes)

    def set_maintenance(self, names, until: float | None, why: str = "") -> list[Transition]:
        """Put ``names`` in maintenance until ``until`` (epoch s; None ends it). Raises for unknown names."""
        names = list(names)
        unknown = [n for n in names if n not in self._machines]
        if unknown:
            raise UnknownTargetError(f"no target named {', '.join(map(repr, unknown))}; "
                                     f"known targets: {', '.join(sorted(self._machines))}")
        with self._lock:
            now = self._clock()
            changes = [self._machines[n].set_maintenance(until, now, why) for n in names]
        return [c for c in changes if c]

    def tick(self) -> list[Transition]:
        """End maintenance periods that are over, between rounds."""
        with self._lock:
            now = self._clock()
            return [c for c in (m.tick(now) for m in self._machines.values()) if c]

    def snapshot(self) -> dict:
        with self._lock:
            return {name: m.status() for name, m in self._machines.items()}

    def verdict(self) -> dict:
        with self._lock:
            return office_verdict(self.targets, {n: m.state for n, m in self._machines.items()}, self.services)

    def next_delay(self) -> float:
        """Seconds to wait before the next round: the interval, or the retry interval while confirming."""
        with self._lock:
            if self._last_start is None:
                return 0.0
            pending = any(m.pending for m in self._machines.values())
            due = self.policy.next_start(self._last_start, self._last_end, pending)
        return max(0.0, due - self._clock())

    def _report(self, started, ended, changes) -> RoundReport:
        states = {n: m.state for n, m in self._machines.items()}
        return RoundReport(started, ended, tuple(c for c in changes if c),
                           {n: m.status() for n, m in self._machines.items()},
                           office_verdict(self.targets, states, self.services))

    def _probe_all(self, at: float) -> dict[str, ProbeResult]:
        results: dict[str, ProbeResult] = {}
        budget = max((t.budget_s for t in self.targets), default=0.0) + ROUND_GRACE_S
        deadline = time.monotonic() + budget
        started = {}
        for t in self.targets:
            if t.name in self._running and self._running[t.name].is_alive():
                continue  # still stuck in last round's call (e.g. a system resolver that hangs)
            thread = threading.Thread(target=self._probe_one, args=(t, at, results), daemon=True,
                                      name=f"probe-{t.name}")
            thread.start()
            started[t.name] = thread
        for name, thread in started.items():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self._running[name] = thread
            else:
                self._running.pop(name, None)
        for t in self.targets:
            if t.name not in results:
                results[t.name] = ProbeResult(ok=False, at=at, detail=f"no result within {budget:.1f} s")
        return dict(results)

    def _probe_one(self, target: Target, at: float, results: dict) -> None:
        try:
            result = self._probe(target, at)
        except Exception as exc:  # a bug in a probe must not read as an outage, nor stop the others
            log.exception("probe of %s failed", target.name)
            result = ProbeResult(ok=False, at=at, inconclusive=True, detail=f"probe error: {exc!r}")
        results.setdefault(target.name, result)


def office_verdict(targets, states: dict, services=()) -> dict:
    """Which services are stopped and the likely cause, from each target's state. JSON-ready.

    ``targets`` gives each name's role; ``states`` maps name to state; a
    service is stopped when any target it needs is down.
    """
    roles = {t.name: t.role for t in targets}
    by_state = {s: sorted(n for n in roles if states.get(n, UNKNOWN) == s) for s in STATES}
    return {
        "status": _office_status(by_state),
        "cause": likely_cause(roles, states),
        "down": by_state[DOWN],
        "degraded": by_state[DEGRADED],
        "maintenance": by_state[MAINTENANCE],
        "unknown": by_state[UNKNOWN],
        "services": [_service_status(s, states) for s in services],
        "stopped_services": [s.code for s in services if _service_status(s, states)["status"] == "stopped"],
    }


def _office_status(by_state: dict) -> str:
    for state, status in ((DOWN, "outage"), (MAINTENANCE, "maintenance"), (DEGRADED, "degraded"),
                          (UNKNOWN, "unknown")):
        if by_state[state]:
            return status
    return "ok"


def _service_status(service, states: dict) -> dict:
    needs = list(service.needs_targets)
    seen = {n: states.get(n, UNKNOWN) for n in needs}
    blocked = [n for n in needs if seen[n] == DOWN]
    paused = [n for n in needs if seen[n] == MAINTENANCE]
    if blocked:
        status = "stopped"
    elif paused:
        status = "maintenance"
    elif any(s == UNKNOWN for s in seen.values()):
        status = "unknown"
    else:
        status = "running"
    return {"code": service.code, "name": service.name, "status": status, "blocked_by": blocked or paused,
            "degraded_by": [n for n in needs if seen[n] == DEGRADED]}


CAUSES = {
    "local_line": "local line or provider (gateway unreachable)",
    "uplink": "provider beyond the gateway (gateway answers; central network and internet do not)",
    "central": "central network",
    "dns": "DNS resolver",
    "internet": "internet only (central network reachable)",
    "central_partial": "part of the central network",
    "other": "some targets unreachable",
}


def likely_cause(roles: dict, states: dict) -> dict | None:
    """The likeliest single cause of what is down, or None when nothing is. Maintenance is not a fault."""
    down = sorted(n for n in roles if states.get(n) == DOWN)
    if not down:
        return None

    def named(role):
        return [n for n in roles if roles[n] == role]

    def any_down(role):
        return any(states.get(n) == DOWN for n in named(role))

    def all_down(role):
        return bool(named(role)) and all(states.get(n) == DOWN for n in named(role))

    if any_down("gateway"):
        code = "local_line"
    elif all_down("central") and all_down("internet"):
        code = "uplink"
    elif all_down("central"):
        code = "central"
    elif any_down("dns"):
        code = "dns"
    elif any_down("internet") and not any_down("central"):
        code = "internet"
    elif any_down("central"):
        code = "central_partial"
    else:
        code = "other"
    return {"code": code, "text": CAUSES[code], "targets": down}
