"""Outage detection on a lossy line, simulated: each probe kind with hysteresis versus Uptime Kuma's default rule.

A synthetic 24-hour day (seeded) of one target, e.g. the central server:
outages of 2 min, 15 min and 6 h (06:00-12:00, like the central network's
morning outage), five blips of 30-60 s, at random times otherwise, and
random loss all day: 15 % in one set of days, 30 % in another. A lost
packet is a lost *reply* (as in benchmarks/detection_real.py, where
iptables drops that share of the packets arriving at the agent): a ping, a
DNS query or a SYN is answered with probability 1 - p, never while dark; a
reply takes 25 ms + an exponential 5 ms.

The probes are modelled per kind with the defaults of edge_agent.probes,
calibrated against the real probes (benchmarks/detection_real.py):

- **icmp**: 20 pings 50 ms apart, 1 s each; the round fails only with no reply.
- **dns**: 5 queries 0.2 s apart, 1 s each; likewise.
- **tcp by name**: the name resolved first (below), then 3 connects 0.2 s
  apart, 2 s each; a lost SYN-ACK is sent again after 1 s (Linux's initial
  RTO), so a connect fails when both are lost; the round fails when all do.
- **http by name**: the name resolved first, then a GET, and a second one
  0.5 s later if the first has no answer, 2.5 s each. A GET connects as
  above, then its answer is lost with p and sent again after 0.2 s, 0.4 s,
  0.8 s ... (the server's RTO, doubling).
- **resolution, ours** (edge_agent.probes.resolve): 4 queries 0.3 s apart
  within 1.5 s; with no answer the last address is used. TTL 0, so every
  round resolves, as in the real run.
- **resolution, glibc** (before the fix): getaddrinfo asks A and AAAA at
  once and waits 5 s before asking again when a reply is lost; the monitor
  gives the round 3.5 s, and skips the target while that call still hangs.

All kinds run through the real :class:`edge_agent.network.TargetMachine`
and :meth:`Policy.next_start` (10 s rounds, 2 s while a change is being
confirmed, down after 3 failed rounds, up after 2 good ones, the loss
test for degraded). **Uptime Kuma defaults**: one ping (count 1) with a
2 s timeout every 60 s after the previous check ended, no retries.

Time is simulated (nothing waits, nothing is sent). Detection is outage
start to down; recovery is outage end to no longer down. A down period
whose first failing round started within an outage (or up to one round's
length before it, whose requests ran into it) belongs to it; any other is
a false outage. An outage with no down period of its own is missed.

    python benchmarks/detection.py            # 60 seeded days per loss level
    python benchmarks/detection.py --quick    # 4 seeded days
"""

import json
import math
import os
import random
import sys

from _common import arguments, percentile, say, table, verdict

from edge_agent.network import DEGRADED, DOWN, UNKNOWN, UP, Policy, TargetMachine
from edge_agent.probes import RESOLVE_BUDGET_S, ProbeResult, Target
from edge_agent.probes._common import figures

DAY_S = 86400
LOSSES = (0.15, 0.30)
RTT_BASE_S, RTT_EXP_S = 0.025, 0.005
SYN_RETRY_S = 1.0  # Linux's initial RTO: a lost SYN-ACK is asked for again after 1 s
SERVER_RTO_S = 0.2  # the server's first retransmission of a lost answer (Linux's minimum RTO)
GLIBC_TIMEOUT_S = 5.0  # resolv.conf's default timeout:5
RESOLVE_TRIES, RESOLVE_SPACING_S = 4, 0.3
ROUND_GRACE_S = 0.5  # edge_agent.network: the monitor waits the slowest budget plus this
OUTAGES_S = (120, 900, 30, 40, 45, 50, 60)  # placed at random; the 6 h one is fixed
MORNING = (6 * 3600, 12 * 3600)
MIN_GAP_S = 20 * 60
TARGET_P95_S, TARGET_DEGRADED_S = 20.0, 60.0
KUMA_INTERVAL_S, KUMA_TIMEOUT_S = 60.0, 2.0
FLAP_S = 30  # the flapping scenario: 30 s dark, 30 s up, for an hour
TARGETS = {
    "icmp": Target(name="central", kind="icmp", role="central", host="10.0.0.1"),
    "dns": Target(name="dns", kind="dns", role="dns", host="10.0.0.1", query_name="siak.test"),
    "tcp": Target(name="central-tcp", kind="tcp", role="central", host="siak.test", port=443),
    "http": Target(name="siak", kind="http", role="central", url="https://siak.test/"),
}
REAL_JSON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "detection_real.json")


class Line:
    """The fate of one day's replies: outages plus independent random loss with probability ``loss``."""

    def __init__(self, rng: random.Random, outages, loss: float):
        self.rng, self.outages, self.loss = rng, sorted(outages), loss

    def dark(self, t: float) -> bool:
        return any(start <= t < end for start, end in self.outages)

    def reply(self, t: float) -> float | None:
        """The RTT of a request sent at ``t``, or None if it has no reply."""
        if self.dark(t) or self.rng.random() < self.loss:
            return None
        return RTT_BASE_S + self.rng.expovariate(1 / RTT_EXP_S)

    def near_outage(self, t: float, margin_s: float = 25.0) -> bool:
        return any(start - margin_s <= t <= end + margin_s for start, end in self.outages)

    def lossy_reply(self) -> bool:
        """Is a reply from a host that stays up (the resolver, in these days) lost?"""
        return self.rng.random() < self.loss


def day_outages(rng: random.Random) -> list[tuple[float, float]]:
    placed = [MORNING]
    for length in OUTAGES_S:
        while True:
            start = rng.uniform(0, DAY_S - length)
            if all(start + length + MIN_GAP_S <= s or start >= e + MIN_GAP_S for s, e in placed):
                placed.append((start, start + length))
                break
    return sorted(placed)


# ------------------------------------------------------------------ the probes, modelled


def requests_round(line: Line, t: float, target: Target) -> tuple[ProbeResult, float]:
    """icmp and dns: ``count`` requests, the round fails with no reply at all."""
    sends = [t + i * target.spacing_s for i in range(target.count)]
    rtts = [line.reply(s) for s in sends]
    end = max(s + (r if r is not None else target.timeout_s) for s, r in zip(sends, rtts, strict=True))
    fig = figures(rtts)
    return ProbeResult(ok=fig["loss"] < target.fail_loss, at=t, detail="", **fig), end


def connect(line: Line, t: float, timeout_s: float) -> float | None:
    """A TCP connect started at ``t``: its time, or None; a lost SYN-ACK is asked for again after 1 s."""
    first = line.reply(t)
    if first is not None:
        return first
    second = line.reply(t + SYN_RETRY_S)
    return SYN_RETRY_S + second if second is not None and SYN_RETRY_S + second <= timeout_s else None


def tcp_round(line: Line, t: float, target: Target) -> tuple[ProbeResult, float]:
    rtts = [connect(line, t + i * target.spacing_s, target.timeout_s) for i in range(target.count)]
    end = t + max(i * target.spacing_s + (r if r is not None else target.timeout_s) for i, r in enumerate(rtts))
    fig = figures(rtts)
    return ProbeResult(ok=fig["loss"] < target.fail_loss, at=t, detail="", **fig), end


def get(line: Line, t: float, timeout_s: float) -> float | None:
    """One GET: connect, then the answer, sent again by the server after 0.2 s, 0.4 s ... while lost."""
    took = connect(line, t, timeout_s)
    if took is None:
        return None
    wait = SERVER_RTO_S
    while took <= timeout_s:
        answer = line.reply(t + took)
        if answer is not None:
            took += answer
            break
        took, wait = took + wait, wait * 2
    return took if took <= timeout_s else None


def http_round(line: Line, t: float, target: Target) -> tuple[ProbeResult, float]:
    first = get(line, t, target.timeout_s)
    if first is not None and first <= target.spacing_s:
        return ProbeResult(ok=True, at=t, detail="", rtt_ms=first * 1000), t + first
    second = get(line, t + target.spacing_s, target.timeout_s)
    # (when it answered, its own RTT): the first answer ends the round and reports that GET's time
    done = [(x, x) for x in (first,) if x is not None]
    done += [(target.spacing_s + x, x) for x in (second,) if x is not None]
    if done:
        answered, rtt = min(done)
        return ProbeResult(ok=True, at=t, detail="", rtt_ms=rtt * 1000), t + answered
    return ProbeResult(ok=False, at=t, detail=""), t + target.spacing_s + target.timeout_s


ROUNDS = {"icmp": requests_round, "dns": requests_round, "tcp": tcp_round, "http": http_round}


def resolve_ours(line: Line) -> float:
    """Seconds our resolution takes; with no answer in the budget the kept address is used (never a failure)."""
    for i in range(RESOLVE_TRIES):
        if not line.lossy_reply():
            return i * RESOLVE_SPACING_S + RTT_BASE_S
    return RESOLVE_BUDGET_S


def resolve_glibc(line: Line) -> float:
    """Seconds getaddrinfo takes: A and AAAA at once, 5 s before asking again if either reply is lost."""
    took = 0.0
    for _ in range(2):  # attempts:2
        if not (line.lossy_reply() or line.lossy_reply()):
            return took + RTT_BASE_S
        took += GLIBC_TIMEOUT_S
    return took


class Prober:
    """One target's rounds as the monitor runs them: resolution, the round, the monitor's bound."""

    def __init__(self, kind: str, resolver: str | None):
        self.target, self.round = TARGETS[kind], ROUNDS[kind]
        self.resolve = {"ours": resolve_ours, "glibc": resolve_glibc, None: None}[resolver]
        self.bound_s = self.target.budget_s + ROUND_GRACE_S if resolver != "glibc" else (
            self.target.budget_s - RESOLVE_BUDGET_S + ROUND_GRACE_S)  # before the fix the budget had no resolution
        self.busy_until = -math.inf  # a call the monitor gave up on still hangs (glibc)

    def __call__(self, line: Line, t: float) -> tuple[ProbeResult, float]:
        if t < self.busy_until:
            return ProbeResult(ok=False, at=t, detail="still running"), t + self.bound_s
        took = self.resolve(line) if self.resolve else 0.0
        if took > self.bound_s:
            self.busy_until = t + took
            return ProbeResult(ok=False, at=t, detail="no result"), t + self.bound_s
        result, end = self.round(line, t + took, self.target)
        return result, min(end, t + self.bound_s)


# ------------------------------------------------------------------ the rules


def simulate_ours(line: Line, phase: float, until: float, prober: Prober):
    """Transitions (time, state, first failing round's start) of our rule, and the requests it sent."""
    policy = Policy()
    machine = TargetMachine(prober.target, policy)
    changes, sent, t, first_fail, rounds = [], 0, phase, None, [0, 0]
    while t < until:
        result, end = prober(line, t)
        sent += prober.target.count
        if not line.near_outage(t):  # rounds under loss alone, as detection_real.py counts them
            rounds[0] += 1
            rounds[1] += not result.ok
        first_fail = None if result.ok else (t if first_fail is None else first_fail)
        change = machine.observe(result, end)
        if change:
            changes.append((end, change.to_state, first_fail if change.to_state == DOWN else t))
        t = policy.next_start(t, end, machine.pending)
    return changes, sent, rounds


def simulate_kuma(line: Line, phase: float, until: float, prober=None):
    changes, sent, t, state = [], 0, phase, UNKNOWN
    while t < until:
        rtt = line.reply(t)
        sent += 1
        end = t + (rtt if rtt is not None else KUMA_TIMEOUT_S)
        new = UP if rtt is not None else DOWN
        if new != state:
            changes.append((end, new, t))
            state = new
        t = end + KUMA_INTERVAL_S
    return changes, sent, [0, 0]


RULES = {  # name: (label, simulate, kind, resolver, interval)
    "icmp": ("icmp (20 pings)", simulate_ours, "icmp", None, 10.0),
    "dns": ("dns (5 queries)", simulate_ours, "dns", None, 10.0),
    "tcp": ("tcp by name (3 connects)", simulate_ours, "tcp", "ours", 10.0),
    "http": ("http by name (hedged GET)", simulate_ours, "http", "ours", 10.0),
    "http-glibc": ("http by name, glibc resolver (before)", simulate_ours, "http", "glibc", 10.0),
    "kuma": ("Uptime Kuma defaults (1 ping, 60 s, 0 retries)", simulate_kuma, "icmp", None, KUMA_INTERVAL_S),
}


def down_periods(changes):
    """(went down at, first failing round started at, came back at) for each down period."""
    periods, current = [], None
    for at, state, started in changes:
        if state == DOWN and current is None:
            current = (at, started)
        elif state != DOWN and current is not None:
            periods.append((current[0], current[1], at))
            current = None
    if current is not None:
        periods.append((current[0], current[1], math.inf))
    return periods


def score(changes, outages, round_s: float):
    """Per-outage delays, missed and false outages of one day's transitions (and the hour after).

    A down period belongs to an outage if it went down by the detection target after the outage's
    end and its first failing round started at most ``round_s`` (the longest a round may take)
    before the outage: such a round's requests, or a retry after a round lost to random loss, run
    into the outage.
    """
    periods = down_periods(changes)
    detect, recover, missed, claimed = [], [], 0, set()
    for start, end in outages:
        slack = max(round_s, Policy().retry_interval_s) + 1.0
        mine = [p for p in periods if start - slack <= p[1] < end and p[0] <= end + TARGET_P95_S]
        if not mine:
            missed += 1
            continue
        claimed.update(mine)
        detect.append(mine[0][0] - start)
        recover.append(mine[-1][2] - end)
    return detect, recover, missed, len([p for p in periods if p not in claimed])


def run_days(days: int, seed: int, loss: float):
    counters = ("missed", "false", "degraded", "sent", "outages", "rounds", "failed_rounds")
    stats = {name: {"detect": [], "recover": [], **dict.fromkeys(counters, 0)} for name in RULES}
    for day in range(days):
        rng = random.Random(seed + day)
        outages = day_outages(rng)
        for name, (_, simulate, kind, resolver, interval) in RULES.items():
            line = Line(random.Random(rng.random()), outages, loss)
            prober = Prober(kind, resolver) if simulate is simulate_ours else None
            changes, sent, rounds = simulate(line, rng.uniform(0, interval), DAY_S + 3600, prober)
            detect, recover, missed, false = score(changes, outages,
                                                   prober.bound_s if prober else KUMA_TIMEOUT_S)
            s = stats[name]
            s["detect"] += detect
            s["recover"] += recover
            s["missed"] += missed
            s["false"] += false
            s["degraded"] += sum(1 for _, state, _ in changes if state == DEGRADED)
            s["sent"] += sent
            s["outages"] += len(outages)
            s["rounds"] += rounds[0]
            s["failed_rounds"] += rounds[1]
        if day % 10 == 9:
            say(f"  {loss:.0%}: {day + 1} days")
    return stats


def degraded_timing(loss: float, runs: int, seed: int):
    """10 clean minutes, 10 at ``loss``, 10 clean: delays to degraded and back for the ICMP target."""
    to_degraded, cleared, wrong = [], [], 0
    for k in range(runs):
        rng = random.Random(seed * 1000 + k)
        line = Line(rng, [], 0.0)
        prober = Prober("icmp", None)
        policy, machine = Policy(), TargetMachine(prober.target, Policy())
        t, entered, left = rng.uniform(0, 10), None, None
        while t < 1800:
            line.loss = loss if 600 <= t < 1200 else 0.0
            result, end = prober(line, t)
            change = machine.observe(result, end)
            if change and change.to_state == DEGRADED and entered is None and t >= 600:
                entered = end
            if change and change.from_state == DEGRADED and t >= 1200 and left is None:
                left = end
            t = policy.next_start(t, end, machine.pending)
        if entered is not None and entered <= 1200:
            to_degraded.append(entered - 600)
            cleared.append((left or math.inf) - 1200)
        wrong += entered is not None
    return to_degraded, cleared, wrong


def flapping(seed: int):
    """An hour of a link that is dark 30 s, light 30 s, with 15 % loss: how many state changes each rule makes."""
    outages = [(600 + k * 2 * FLAP_S, 600 + k * 2 * FLAP_S + FLAP_S) for k in range(3600 // (2 * FLAP_S))]
    rows = []
    for name, simulate, prober in (("ours (icmp)", simulate_ours, Prober("icmp", None)),
                                   ("Uptime Kuma defaults", simulate_kuma, None)):
        changes, _, _ = simulate(Line(random.Random(seed), outages, 0.15), 3.0, 600 + 3600 + 1200, prober)
        downs = sum(1 for _, state, _ in changes if state == DOWN)
        rows.append([name, len(outages), len(changes) - 1, downs])
    return rows


def seconds(values, p):
    return f"{percentile(values, p):.1f} s" if values else "-"


def main(argv=None) -> int:
    parser = arguments(__doc__, "4 simulated days per loss level instead of 60")
    parser.add_argument("--days", type=int, help="simulated days per loss level (default 60)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--real", default=REAL_JSON, help="detection_real.py --json output to compare with")
    args = parser.parse_args(argv)
    days = args.days or (4 if args.quick else 60)
    print("# Outage detection: 24 h days of random loss, simulated\n")
    print(f"{days} seeded days per loss level (seed {args.seed}); each day: outages of 6 h (06:00-12:00), 15 min, "
          "2 min and five blips of 30-60 s, 8 a day; every reply lost with p or while dark. Simulated clock.\n")
    per_day = days * (DAY_S + 3600) / DAY_S  # each run goes on an hour past the day
    rows, model = [], {}
    for loss in LOSSES:
        say(f"simulating {days} days at {loss:.0%} ...")
        stats = run_days(days, args.seed, loss)
        for name, (label, *_rest) in RULES.items():
            s = stats[name]
            ok = (s["false"] == 0 and s["missed"] == 0 and percentile(s["detect"], 95) <= TARGET_P95_S
                  and percentile(s["recover"], 95) <= TARGET_P95_S)
            model[(loss, name)] = s
            reference = name in ("kuma", "http-glibc")
            rows.append([f"{loss:.0%}", label, seconds(s["detect"], 50), seconds(s["detect"], 95),
                         seconds(s["recover"], 50), seconds(s["recover"], 95), seconds(s["recover"], 100),
                         f"{s['false']} ({s['false'] / per_day:.1f}/day)", f"{s['missed']} of {s['outages']}",
                         f"{s['degraded'] / per_day:.1f}", f"{s['sent'] / per_day:,.0f}",
                         "reference" if reference else f"p95 <= {TARGET_P95_S:.0f} s, 0 false",
                         "-" if reference else verdict(ok)])
    print(table(["loss", "rule", "detect p50", "p95", "recover p50", "p95", "max", "false outages", "missed",
                 "to degraded/day", "requests/day", "target", "result"], rows))
    print("\n'glibc resolver (before)' is the http target as it was: at 15 % loss a quarter of its rounds "
          "waited 5 s for the name, beyond the round's 3.5 s, so three in a row came often (the outside test "
          "saw the false outage of e-KTP). At 30 % loss the icmp and dns targets are degraded again after each of "
          "the day's outages, because a target's quality is judged afresh when it comes back; 'to degraded/day' "
          "counts each entry (and the 5-minute degraded spell of a flapping target that answers again).")
    print_degraded(args.seed, 100 if args.quick else 300)
    print("\n## A flapping link: dark 30 s, light 30 s, for an hour (15 % loss)\n")
    print(table(["rule", "dark spells", "state changes", "of them to down"], flapping(args.seed)))
    print("\nOurs: the third outage within an hour makes the target flapping; after that it goes down when dark "
          "and is degraded (answering, unreliable) when light; a spell of 30 s is only just confirmed either way.")
    print_comparison(model, args.real)
    return 0


def print_degraded(seed: int, runs: int) -> None:
    print(f"\n## Degraded: 10 clean minutes, 10 with loss, 10 clean ({runs} seeded runs, icmp target)\n")
    rows = []
    for loss in LOSSES:
        to_degraded, cleared, wrong = degraded_timing(loss, runs, seed)
        if loss >= TARGETS["icmp"].degraded_loss:
            ok = len(to_degraded) == runs and percentile(to_degraded, 95) <= TARGET_DEGRADED_S
            rows.append([f"{loss:.0%}", f"{len(to_degraded)} of {runs}", seconds(to_degraded, 50),
                         seconds(to_degraded, 95), seconds(cleared, 50), seconds(cleared, 95),
                         f"p95 <= {TARGET_DEGRADED_S:.0f} s", verdict(ok)])
        else:
            rows.append([f"{loss:.0%}", f"{wrong} of {runs} (wrongly: under the 20 % limit)", "-", "-",
                         seconds(cleared, 50), seconds(cleared, 95), "none expected", verdict(wrong <= runs // 20)])
    print(table(["loss", "runs degraded", "to degraded p50", "p95", "gone after the loss p50", "p95", "target",
                 "result"], rows))


def print_comparison(model: dict, path: str) -> None:
    print("\n## Model versus the real probes (benchmarks/detection_real.py)\n")
    try:
        with open(path, encoding="utf-8") as f:
            real = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"No real run to compare with ({exc}); run `benchmarks/detection_real.py --json {path}`.")
        return
    print(f"Real run: {real['when']} on {real['machine']}, {real['minutes']:g} min of loss per level.\n")
    rows = []
    for entry in real["targets"]:
        name = {"gw": "icmp", "central": "icmp", "dns": "dns", "central-tcp": "tcp", "siak": "http"}[entry["target"]]
        s = model[(entry["loss"], name)]
        share = f"{s['failed_rounds'] / s['rounds']:.3%}" if s["rounds"] else "-"
        rows.append([f"{entry['loss']:.0%}", f"{entry['target']} ({name})", f"{share} / {_real_share(entry)}",
                     _pair(s["detect"], entry["detect"], 95), _pair(s["recover"], entry["recover"], 95),
                     f"{len(entry['false'])}"])
    print(table(["loss", "target", "failed rounds under loss, model / real", "detect p95 model / real",
                 "recover p95 model / real", "real false outages"], rows))
    print("\nWhere they still differ: the real agent probes all five targets in one round, so a round lasts as "
          "long as its slowest probe (a dark http target's 3 s) and the others' confirmation is that much "
          "slower, while the model runs each target alone; real state changes carry 1 s timestamps; the real "
          "lab's few outages per level (about 3-4 per target) make its p95 nearly its maximum; and the real "
          "probes share two CPU cores with everything else on this machine. The model's TCP and HTTP losses "
          "follow Linux's 1 s SYN retry and 0.2 s doubling RTO; real retransmission timers vary more.")


def _real_share(entry) -> str:
    if not entry["rounds"]:
        return "-"
    return f"{entry['failed'] / entry['rounds']:.1%} ({entry['failed']} of {entry['rounds']})"


def _pair(model_values, real_values, p) -> str:
    real = f"{percentile(real_values, p):.0f} s" if real_values else "-"
    return f"{seconds(model_values, p)} / {real}"


if __name__ == "__main__":
    sys.exit(main())
