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
  budget (ICMP 1.95 s, DNS 1.8 s, TCP 2.4 s, HTTP 3 s by default; 1.5 s
  more for a host given by name only while its resolver is slow), so an
  outage is confirmed within 10 + 3 x 3 = 19 s of its start at worst.
- Degraded by loss is a change-point test on the packets of good rounds
  (CUSUM, Page 1954): each lost packet adds ln(p1/p0), each answered one
  ln((1-p1)/(1-p0)), with p0 = 0.75 x and p1 = 1.5 x ``Target.degraded_loss``
  (15 % and 30 % for the default 20 %); the sum never goes below 0, and
  reaching ``loss_alarm`` (10) makes the target degraded. A second sum
  (p 0.5 x versus 1.5 x the limit) reaching ``loss_clear`` (4) ends it.
  While the first sum is above ``loss_suspect`` (1) the target is pending,
  so rounds come every 2 s until it is decided. With the default 20 pings
  a round, 30 % loss after a clean line makes a target degraded within
  about 45 s (p95), a line back to clean ends it within about 10 s, and a
  steady 15 % against the 20 % limit gives a false "degraded" about once in
  3 days (simulated; benchmarks/detection.py). A fixed window cannot do
  both: the 60-round window this replaces took 6 minutes to see 30 % loss
  and 7 to see it gone. Degraded by RTT: the median RTT of the last
  ``rtt_rounds`` (20, about 3 minutes) good rounds at or above
  ``Target.degraded_rtt_ms``; it ends below 80 % of it. Fewer rounds
  toggled: at 30 % loss a TCP connect often waits for its SYN to be sent
  again after 1 s, and a 6-round median crossed 500 ms 130 times a day.
- A target that went down ``flap_downs`` (3) times within ``flap_window_s``
  (1 h) is flapping. Once it answers again (``recover_after`` good rounds,
  as always) it is *degraded*, not down: it works, so no service is
  reported stopped and the office verdict does not move the cause onto it,
  but the state and its reason say it is unreliable. It is up again only
  after ``flap_stable_s`` (5 min) without a failed round.
- Maintenance is set from outside (the centre's notice) and hides the
  target's health until its end; the health is still tracked underneath,
  so a target still down when maintenance ends is reported down then.

Time is passed in everywhere (epoch seconds): the logic here never reads a clock itself,
except :class:`NetworkMonitor`, whose clock is a parameter.
"""

import datetime as dt
import logging
import math
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from edge_agent import schema
from edge_agent.errors import AgentConfigError, AgentError
from edge_agent.probes import ProbeResult, Target, run_probe
from edge_agent.schema import CauseCode, OfficeStatus, ServiceState, TargetRole, TargetState

UNKNOWN, UP, DEGRADED, DOWN, MAINTENANCE = TargetState
STATES = tuple(TargetState)
# The loss test's hypotheses, as shares of Target.degraded_loss: acceptable, clearly degraded, clean again.
LOSS_OK, LOSS_BAD, LOSS_CLEAN = 0.75, 1.5, 0.5
RTT_CLEAR = 0.8  # degraded by RTT ends below 80 % of the limit
REASON_ROUNDS = 6  # a degraded-by-loss reason names the loss of this many last rounds
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
    loss_alarm: float = 10.0
    loss_clear: float = 4.0
    loss_suspect: float = 1.0
    rtt_rounds: int = 20
    flap_window_s: float = 3600.0
    flap_downs: int = 3
    flap_stable_s: float = 300.0

    def __post_init__(self):
        problems = []
        for name in ("interval_s", "retry_interval_s", "flap_window_s", "flap_stable_s", "loss_alarm",
                     "loss_clear", "loss_suspect"):
            if not getattr(self, name) > 0:
                problems.append(f"network policy: {name} {getattr(self, name)!r} must be above 0")
        for name in ("fail_after", "recover_after", "rtt_rounds", "flap_downs"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                problems.append(f"network policy: {name} {value!r} must be a whole number of at least 1")
        if not problems and self.loss_suspect >= self.loss_alarm:
            problems.append(f"network policy: loss_suspect {self.loss_suspect} must be below "
                            f"loss_alarm {self.loss_alarm}")
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
        self._loss = LossTest(target.degraded_loss, policy)
        self._rtts: deque = deque(maxlen=policy.rtt_rounds)  # of the last good rounds
        self._downs: deque = deque()  # when it went down lately, for flap damping
        self._flap_hold = False  # answering again after flapping: degraded until it stays good
        self._maintenance_why = ""

    @property
    def pending(self) -> bool:
        """A change is being confirmed: the monitor should probe again soon."""
        if self._health == DOWN:
            return self._goods > 0
        return self._fails > 0 or (self._health == UP and self._loss.suspect)

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
            self._flap_hold = False
            self._loss.reset()  # the quality before the outage says nothing about after it
            self._rtts.clear()

    def _good(self, result: ProbeResult, now: float) -> None:
        self._fails = 0
        self._goods += 1
        if self._good_since is None:
            self._good_since = now
        self._loss.observe(result.loss, self.target.count)
        if result.rtt_ms is not None:
            self._rtts.append(result.rtt_ms)
        if self._health == DOWN:
            if self._goods < self.policy.recover_after:
                return
            if self.flapping:
                self._health, self._flap_hold = DEGRADED, True
                self._why = (f"answering again, but flapping: {len(self._downs)} outages within "
                             f"{self.policy.flap_window_s / 60:g} min; up after "
                             f"{self.policy.flap_stable_s / 60:g} min without a failed round")
                return
            self._health, self._why = UP, f"answering again: {result.detail}"
        elif self._health == UNKNOWN:
            self._health, self._why = UP, f"answering: {result.detail}"
        if self._flap_hold:
            if now - self._good_since < self.policy.flap_stable_s:
                return
            self._flap_hold = False
            self._health, self._why = UP, f"stable again for {self.policy.flap_stable_s / 60:g} min"
        self._judge_quality()

    def _judge_quality(self) -> None:
        t, loss, rtts = self.target, self._loss, self._rtts
        rtt = statistics.median(rtts) if len(rtts) == rtts.maxlen else None
        if self._health == UP and loss.degraded:
            self._health = DEGRADED
            self._why = f"loss {loss.recent:.0%} over the last {loss.packets} packets (limit {t.degraded_loss:.0%})"
        elif self._health == UP and rtt is not None and rtt >= t.degraded_rtt_ms:
            self._health = DEGRADED
            self._why = f"median RTT {rtt:.0f} ms over the last {len(rtts)} rounds (limit {t.degraded_rtt_ms:g} ms)"
        elif self._health == DEGRADED and not loss.degraded and (rtt is None or rtt < t.degraded_rtt_ms * RTT_CLEAR):
            rtt_text = f", median RTT {rtt:.0f} ms" if rtt is not None else ""
            self._health = UP
            self._why = f"loss {loss.recent:.0%} over the last {loss.packets} packets{rtt_text}"

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


class LossTest:
    """Is the loss of a target's good rounds at its limit? Two one-sided CUSUM tests, one per direction.

    ``degraded`` turns on when the evidence for "1.5 x the limit" over "0.75 x
    the limit" sums to ``Policy.loss_alarm`` (from three rounds at least),
    off when the evidence for "0.5 x the limit" over "1.5 x" sums to
    ``Policy.loss_clear``. ``recent`` and ``packets`` describe the last
    rounds, for a reason text.
    """

    def __init__(self, limit: float, policy: Policy):
        ok, bad, clean = limit * LOSS_OK, min(limit * LOSS_BAD, (1 + limit) / 2), limit * LOSS_CLEAN
        self._worse = (math.log(bad / ok), math.log((1 - bad) / (1 - ok)))  # per lost, per answered packet
        self._better = (math.log(clean / bad), math.log((1 - clean) / (1 - bad)))
        self.policy = policy
        self._last: deque = deque(maxlen=REASON_ROUNDS)  # (lost, sent) of the last rounds
        self.reset()

    def reset(self) -> None:
        self.degraded, self.worse, self.better = False, 0.0, 0.0
        self._last.clear()

    @property
    def suspect(self) -> bool:
        return not self.degraded and self.worse >= self.policy.loss_suspect

    @property
    def packets(self) -> int:
        return sum(sent for _, sent in self._last)

    @property
    def recent(self) -> float:
        return sum(lost for lost, _ in self._last) / self.packets if self.packets else 0.0

    def observe(self, loss: float | None, sent: int) -> None:
        """One good round: ``loss`` of its ``sent`` requests went unanswered (None: the kind has no loss)."""
        if loss is None:
            return
        lost = round(loss * sent)
        self._last.append((lost, sent))
        answered = sent - lost
        # A burst is not independent loss: one round brings at most a third of the evidence needed.
        evidence = min(lost * self._worse[0] + answered * self._worse[1], self.policy.loss_alarm / 3)
        self.worse = max(0.0, self.worse + evidence)
        self.better = max(0.0, self.better + lost * self._better[0] + answered * self._better[1])
        if not self.degraded and self.worse >= self.policy.loss_alarm:
            self.degraded, self.better = True, 0.0
        elif self.degraded and self.better >= self.policy.loss_clear:
            self.degraded, self.worse = False, 0.0


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

    def message(self) -> schema.Network:
        """The ``network`` message body, checked against the schema."""
        return schema.Network.from_dict(self.to_dict(), "network")


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
        "stopped_services": [s.code for s in services if _service_status(s, states)["status"] is ServiceState.STOPPED],
    }


def _office_status(by_state: dict) -> OfficeStatus:
    for state, status in ((DOWN, OfficeStatus.OUTAGE), (MAINTENANCE, OfficeStatus.MAINTENANCE),
                          (DEGRADED, OfficeStatus.DEGRADED), (UNKNOWN, OfficeStatus.UNKNOWN)):
        if by_state[state]:
            return status
    return OfficeStatus.OK


def _service_status(service, states: dict) -> dict:
    needs = list(service.needs_targets)
    seen = {n: states.get(n, UNKNOWN) for n in needs}
    blocked = [n for n in needs if seen[n] == DOWN]
    paused = [n for n in needs if seen[n] == MAINTENANCE]
    if blocked:
        status = ServiceState.STOPPED
    elif paused:
        status = ServiceState.MAINTENANCE
    elif any(s == UNKNOWN for s in seen.values()):
        status = ServiceState.UNKNOWN
    else:
        status = ServiceState.RUNNING
    return {"code": service.code, "name": service.name, "status": status, "blocked_by": blocked or paused,
            "degraded_by": [n for n in needs if seen[n] == DEGRADED]}


CAUSES = {
    CauseCode.LOCAL_LINE: "local line or provider (gateway unreachable)",
    CauseCode.UPLINK: "provider beyond the gateway (gateway answers; central network and internet do not)",
    CauseCode.CENTRAL: "central network",
    CauseCode.DNS: "DNS resolver",
    CauseCode.INTERNET: "internet only (central network reachable)",
    CauseCode.CENTRAL_PARTIAL: "part of the central network",
    CauseCode.OTHER: "some targets unreachable",
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

    if any_down(TargetRole.GATEWAY):
        code = CauseCode.LOCAL_LINE
    elif all_down(TargetRole.CENTRAL) and all_down(TargetRole.INTERNET):
        code = CauseCode.UPLINK
    elif all_down(TargetRole.CENTRAL):
        code = CauseCode.CENTRAL
    elif any_down(TargetRole.DNS):
        code = CauseCode.DNS
    elif any_down(TargetRole.INTERNET) and not any_down(TargetRole.CENTRAL):
        code = CauseCode.INTERNET
    elif any_down(TargetRole.CENTRAL):
        code = CauseCode.CENTRAL_PARTIAL
    else:
        code = CauseCode.OTHER
    return {"code": code, "text": CAUSES[code], "targets": down}
