"""Outage detection on a lossy line: our probe rounds with hysteresis versus Uptime Kuma's default rule.

A synthetic 24-hour day (seeded) of one target, e.g. the central server:
outages of 2 min, 15 min and 6 h (06:00-12:00, like the central network's
morning outage), five blips of 30-60 s, at random times otherwise, and 15 %
random packet loss all day. Every packet of both rules goes through the
same loss process: lost with p = 0.15, or lost because it was sent during
an outage; a reply takes 25 ms + an exponential 5 ms.

- **ours**: the real :class:`edge_agent.network.TargetMachine` and
  :meth:`Policy.next_start` with the default ICMP target: 5 pings 200 ms
  apart, 1 s per-ping timeout, a round fails only with no reply; rounds
  10 s apart, 2 s apart (start to start) while confirming; down after 3
  failed rounds, up after 2 good ones. A second row runs the same target
  in rounds it shares with a dark HTTP target, which last 3 s.
- **Uptime Kuma defaults**: a ping monitor with 60 s interval and 0
  retries: one ping (its default count 1) with a 2 s timeout per check,
  the next check 60 s after the previous one ended; one failed check is
  down, one success is up.

Time is simulated (nothing waits, nothing is sent). Delays: detection is
outage start to the transition to down; recovery is outage end to the
transition back. A down period whose first failing check started within
an outage belongs to it; any other down period is a false outage. An
outage with no down period of its own is missed.

    python benchmarks/detection.py            # 200 seeded days
    python benchmarks/detection.py --quick    # 10 seeded days
"""

import argparse
import functools
import math
import random
import sys

from _common import percentile, say, table, verdict

from edge_agent.network import DEGRADED, DOWN, UNKNOWN, Policy, TargetMachine
from edge_agent.probes import ProbeResult, Target
from edge_agent.probes._common import figures

DAY_S = 86400
LOSS = 0.15
RTT_BASE_S, RTT_EXP_S = 0.025, 0.005
OUTAGES_S = (120, 900, 30, 40, 45, 50, 60)  # placed at random; the 6 h one is fixed
MORNING = (6 * 3600, 12 * 3600)
MIN_GAP_S = 20 * 60
TARGET_P95_S = 20.0
KUMA_INTERVAL_S, KUMA_TIMEOUT_S = 60.0, 2.0
FLAP_S = 30  # the flapping scenario: 30 s dark, 30 s up, for an hour
HTTP = Target(name="siak", kind="http", role="central", url="https://siak.test/")  # the defaults


class Line:
    """The packet fate of one day: outages plus independent random loss."""

    def __init__(self, rng: random.Random, outages):
        self.rng = rng
        self.outages = sorted(outages)

    def dark(self, t: float) -> bool:
        return any(start <= t < end for start, end in self.outages)

    def ping(self, t: float) -> float | None:
        """The RTT of a ping sent at ``t``, or None if it is lost."""
        if self.dark(t) or self.rng.random() < LOSS:
            return None
        return RTT_BASE_S + self.rng.expovariate(1 / RTT_EXP_S)


def day_outages(rng: random.Random) -> list[tuple[float, float]]:
    placed = [MORNING]
    for length in OUTAGES_S:
        while True:
            start = rng.uniform(0, DAY_S - length)
            if all(start + length + MIN_GAP_S <= s or start >= e + MIN_GAP_S for s, e in placed):
                placed.append((start, start + length))
                break
    return sorted(placed)


def simulate_ours(line: Line, phase: float, until: float = DAY_S, dark_round_s: float = 0.0):
    """Transitions (time, state) of our rule, and the pings it sent.

    ``dark_round_s``: while the line is dark, a round lasts at least this long,
    because the monitor waits for its slowest probe (an HTTP target of the
    same host fails after its budget).
    """
    target = Target(name="central", kind="icmp", role="central", host="10.0.0.1")
    policy = Policy()
    machine = TargetMachine(target, policy)
    changes, pings, t, first_fail = [], 0, phase, None
    while t < until:
        sends = [t + i * target.spacing_s for i in range(target.count)]
        rtts = [line.ping(s) for s in sends]
        pings += len(sends)
        # the round ends when the last reply is in or the last lost ping's timeout ran out
        end = max(s + (r if r is not None else target.timeout_s) for s, r in zip(sends, rtts, strict=True))
        if line.dark(t):
            end = max(end, t + dark_round_s)
        fig = figures(rtts)
        result = ProbeResult(ok=fig["loss"] < target.fail_loss, at=t, detail="", **fig)
        first_fail = None if result.ok else (t if first_fail is None else first_fail)
        change = machine.observe(result, end)
        if change:
            changes.append((end, change.to_state, first_fail if change.to_state == DOWN else t))
        t = policy.next_start(t, end, machine.pending)
    return changes, pings


def simulate_kuma(line: Line, phase: float, until: float = DAY_S):
    changes, pings, t, state = [], 0, phase, UNKNOWN
    while t < until:
        rtt = line.ping(t)
        pings += 1
        end = t + (rtt if rtt is not None else KUMA_TIMEOUT_S)
        new = "up" if rtt is not None else DOWN
        if new != state:
            changes.append((end, new, t))
            state = new
        t = end + KUMA_INTERVAL_S
    return changes, pings


def down_periods(changes):
    """(went down at, first failing check started at, came back at) for each down period."""
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


def score(changes, outages):
    """Per-outage delays, missed and false outages of one day's transitions (and the hour after)."""
    periods = down_periods(changes)
    detect, recover, missed, claimed = [], [], 0, set()
    for start, end in outages:
        # 1 s of slack: a round whose first pings went out just before the outage began
        mine = [p for p in periods if start - 1.0 <= p[1] < end]
        if not mine:
            missed += 1
            continue
        claimed.update(mine)
        detect.append(mine[0][0] - start)
        recover.append(mine[-1][2] - end)
    return detect, recover, missed, len([p for p in periods if p not in claimed])


RULES = {
    "ours": (simulate_ours, Policy().interval_s),
    "ours+http": (functools.partial(simulate_ours, dark_round_s=HTTP.budget_s), Policy().interval_s),
    "kuma": (simulate_kuma, KUMA_INTERVAL_S),
}


def run_days(days: int, seed: int):
    counters = ("missed", "false", "changes", "degraded", "pings", "outages")
    stats = {name: {"detect": [], "recover": [], **dict.fromkeys(counters, 0)} for name in RULES}
    for day in range(days):
        rng = random.Random(seed + day)
        outages = day_outages(rng)
        for name, (simulate, interval) in RULES.items():
            line = Line(random.Random(rng.random()), outages)
            phase = rng.uniform(0, interval)
            changes, pings = simulate(line, phase, until=DAY_S + 3600)  # see the last outage's recovery
            detect, recover, missed, false = score(changes, outages)
            s = stats[name]
            s["detect"] += detect
            s["recover"] += recover
            s["missed"] += missed
            s["false"] += false
            s["changes"] += sum(1 for _, state, _ in changes if state == DOWN) * 2  # to down and back
            s["degraded"] += sum(1 for _, state, _ in changes if state == DEGRADED)
            s["pings"] += pings
            s["outages"] += len(outages)
        if day % 20 == 19:
            say(f"  {day + 1} days")
    return stats


def flapping(seed: int):
    """An hour of a link that is dark 30 s, light 30 s, with 15 % loss: how many state changes each rule makes."""
    outages = [(600 + k * 2 * FLAP_S, 600 + k * 2 * FLAP_S + FLAP_S) for k in range(3600 // (2 * FLAP_S))]
    rows = []
    for name, simulate in (("ours", simulate_ours), ("Uptime Kuma defaults", simulate_kuma)):
        changes, _ = simulate(Line(random.Random(seed), outages), 3.0, until=600 + 3600 + 1200)
        downs = sum(1 for _, state, _ in changes if state == DOWN)
        rows.append([name, len(outages), len(changes) - 1, downs])
    return rows


def seconds(values, p):
    return f"{percentile(values, p):.1f} s" if values else "-"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 simulated days instead of 200")
    parser.add_argument("--days", type=int, help="simulated days (default 200)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    days = args.days or (10 if args.quick else 200)
    say(f"simulating {days} days ...")
    stats = run_days(days, args.seed)

    print("# Outage detection: 24 h with 15 % random packet loss\n")
    print(f"{days} seeded days (seed {args.seed}); each day: outages of 6 h (06:00-12:00), 15 min, 2 min and "
          f"five blips of 30-60 s, {stats['ours']['outages']} in all; every packet lost with p = {LOSS:.2f} "
          "or while dark. Simulated clock.\n")
    per_day = days * (DAY_S + 3600) / DAY_S  # each run goes on an hour past the day
    rows = []
    goal = f"p95 <= {TARGET_P95_S:.0f} s, 0 false"
    for name, label, target in (("ours", "ours (5 pings/round, 10 s, 3 fail / 2 ok, 2 s retry)", goal),
                                ("ours+http", f"ours, rounds shared with a dark HTTP target ({HTTP.budget_s:g} s)",
                                 goal),
                                ("kuma", "Uptime Kuma defaults (1 ping, 60 s, 0 retries)", "reference")):
        s = stats[name]
        ok = percentile(s["detect"], 95) <= TARGET_P95_S and s["false"] == 0 and s["missed"] == 0
        rows.append([label, seconds(s["detect"], 50), seconds(s["detect"], 95), seconds(s["detect"], 100),
                     seconds(s["recover"], 50), seconds(s["recover"], 95), seconds(s["recover"], 100),
                     f"{s['false']} ({s['false'] / per_day:.1f}/day)", f"{s['missed']} of {s['outages']}",
                     f"{s['changes'] / per_day:.1f}", f"{s['degraded'] / per_day:.1f}",
                     f"{s['pings'] / per_day:,.0f}",
                     target, verdict(ok) if name != "kuma" else "-"])
    print(table(["rule", "detect p50", "p95", "max", "recover p50", "p95", "max", "false outages", "missed",
                 "down/up changes/day", "to degraded/day", "pings/day", "target", "result"], rows))

    damped = sum(1 for r in stats["ours"]["recover"] if r > 60)
    if damped:
        print(f"\nOurs: {damped} of {len(stats['ours']['recover'])} recoveries took over 60 s: the random "
              "placement put a third outage within an hour, so flap damping held the target down until "
              "5 min without a failed round (the max).")
    print("\nThe second row is the same ICMP target in a monitor that also probes the central host over HTTP: "
          "a round lasts as long as its slowest probe, and a dark HTTP target fails only after its budget "
          f"(a GET, a hedged second GET after {HTTP.spacing_s:g} s, {HTTP.timeout_s:g} s timeout each), "
          "so the confirming rounds are longer.")
    print("\nDown/up changes count each down period twice (down and back). Ours clears its quality window at an "
          "outage, so after each one the 15 % loss makes it degraded again a minute or so after it is up.")
    print("\n## A flapping link: dark 30 s, light 30 s, for an hour (same 15 % loss)\n")
    print(table(["rule", "dark spells", "state changes", "of them to down"], flapping(args.seed)))
    print("\nOurs: the third outage within an hour makes the target flapping; it is reported up again only "
          "after 5 min without a failed round, so the hour gives a few changes instead of one per spell.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
