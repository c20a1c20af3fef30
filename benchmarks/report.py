"""One command for the reliability and performance report.

    python benchmarks/report.py [--quick] [--power-cuts N]

Runs every benchmark and writes their tables to docs/performance.md; runs
every fault scenario of the test suite (power cuts, printer faults, network
faults, broker outages, clock faults) and writes what was tried, how many
times and what was lost to docs/reliability.md. Both files name the machine.
Traffic stays on loopback and in namespaces the tests make (the network
scenarios need root).
"""

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from _common import machine  # noqa: E402

BENCHMARKS = ("issuing", "ticket_size", "startup", "printing", "detection_real", "detection", "agent", "lobby",
              "liveness")
# (what was tried, pytest arguments, what "lost" means for it)
SCENARIOS = (
    ("Power cut (SIGKILL) at random moments in start-up (first, second and later starts) and while issuing "
     "and printing", ("tests/test_power_cut.py",),
     "tickets on paper but not in the ledger, duplicate numbers, quota exceeded, integrity_check, "
     "a start that does not come back"),
    ("Printer faults before a press and mid-ticket, unplug/replug, silent and garbage status "
     "(pty at 19,200 baud and TCP)", ("tests/test_printing_links.py",),
     "tickets without a number on paper, numbers taken while the printer was down, tickets never reprinted"),
    ("Network faults in namespaces: host dark, 2 s answers, 30 % loss (targets named by host behind a real "
     "dnsmasq too), DNS silent, gateway/central down, flapping", ("tests/test_network_faults.py",
                                                                  "tests/test_network_outages.py"),
     "false or missed outages, wrong cause, degraded later than a minute"),
    ("Broker outage: events queued on disk, publisher killed mid-backlog, broker restarted",
     ("tests/test_mqtt.py",), "events not delivered, delivered out of order or without their time"),
    ("A 12-hour broker outage compressed in time (two kiosks and their agents as processes), with an "
     "agent restart and a power cut of everything in it", ("tests/test_broker_outage_day.py",),
     "tickets, events or state changes not delivered, duplicates after dedupe, samples dropped uncounted, "
     "outbox over its cap"),
    ("Regional uplink down with the site broker restarted in it (real site and regional Mosquitto, "
     "bridged over TLS)", ("tests/test_bridge.py",),
     "events not forwarded, commands or their answers not carried, bridge state not said"),
    ("Clock a year ahead and three days behind across power cuts (the kiosk process under libfaketime), "
     "a leap while running, a 10-day typo set by hand and corrected, staff commands on a wrong clock, "
     "confirmations that time out, weeks without a ticket",
     ("tests/test_clock_faults.py", "tests/test_clock_steps.py", "tests/test_clock.py", "tests/test_kiosk.py",
      "-k", "clock or quiet"),
     "tickets dated before the ledger's latest time or on a wrong date, a wrong time reaching the ledger, "
     "a confirmation applied later"),
    ("Kiosk killed (SIGKILL), frozen (SIGSTOP), stopped, in a crash loop, or busy with a batch of reprints "
     "on a slow link (real kiosk processes, Mosquitto, the lobby)",
     ("tests/test_liveness.py", "tests/test_followups_kiosk_flaps.py", "tests/test_followups_reprint_liveness.py"),
     "a dead or hung kiosk not said by kiosk status, the agent and the lobby within heartbeat_stale_s; "
     "a busy kiosk called hung; a crash loop flooding the outbox"),
    ("Damaged files at start: empty, truncated and garbage python-escpos caches, temporaries left by a cut, "
     "every write watched with strace", ("tests/test_durable.py", "tests/test_durable_startup.py"),
     "a program that does not start, a file replaced in place or not flushed"),
    ("Bad input from outside: config files (FIFO, /dev/zero, non-UTF-8, deep nesting, out-of-range numbers), "
     "MQTT commands (deep JSON, retained, stale, out-of-range), lobby HTTP (200 MB uploads, odd digits, "
     "login bursts, copied cookies)",
     ("tests/test_config.py", "tests/test_agent_config.py", "tests/test_commands.py",
      "tests/test_lobby_hardening.py", "tests/test_lobby_limits.py"),
     "a traceback, a hang, a 500, or a change made by input that was refused"),
    ("Button panel unplugged, replugged, power-cycled, hung, garbage and replayed lines",
     ("tests/test_panel_host.py",), "presses lost or issued twice"),
)


def run_benchmark(name: str, quick: bool) -> tuple[str, float]:
    started = time.monotonic()
    args = [sys.executable, os.path.join(ROOT, "benchmarks", f"{name}.py")] + (["--quick"] if quick else [])
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    text = result.stdout if result.returncode == 0 else f"FAILED (exit {result.returncode}):\n{result.stderr[-2000:]}"
    return text, time.monotonic() - started


def run_scenario(args: tuple, env: dict) -> tuple[int, int, int, float, list[dict]]:
    """Runs the tests; also returns the counts a test printed as ``SCENARIO {json}`` lines."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *args],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env})
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error)", result.stdout)}
    told = [json.loads(line.split(" ", 1)[1]) for line in result.stdout.splitlines() if line.startswith("SCENARIO ")]
    return counts.get("passed", 0), counts.get("failed", 0) + counts.get("error", 0), counts.get("skipped", 0), \
        time.monotonic() - started, told


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="quick benchmarks, 50 power cuts")
    parser.add_argument("--power-cuts", type=int, default=None, help="default 1000 (50 with --quick)")
    args = parser.parse_args()
    cuts = args.power_cuts or (50 if args.quick else 1000)
    stamp = f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} on {machine()}"
    write_performance(stamp, args.quick)
    failed = write_reliability(stamp, cuts)
    return 1 if failed else 0


def write_performance(stamp: str, quick: bool) -> None:
    parts = [f"# Performance\n\nProduced by `python benchmarks/report.py{' --quick' if quick else ''}`, {stamp}.\n"
             "Each section is one benchmark's own table (benchmarks/README.md says what it measures).\n"]
    for name in BENCHMARKS:
        print(f"benchmark {name} ...", file=sys.stderr)
        text, took = run_benchmark(name, quick)
        parts.append(f"\n## benchmarks/{name}.py ({took:.0f} s)\n\n{text.strip()}\n")
    with open(os.path.join(ROOT, "docs", "performance.md"), "w") as f:
        f.write("\n".join(parts))


def write_reliability(stamp: str, cuts: int) -> int:
    rows, told_all, failed_total = [], [], 0
    for tried, args, lost in SCENARIOS:
        print(f"scenario {' '.join(args)} ...", file=sys.stderr)
        power_cuts = "tests/test_power_cut.py" in args
        passed, failed, skipped, took, told = run_scenario(args, {"ANTREAN_TEST_POWER_CUTS": str(cuts)}
                                                           if power_cuts else {})
        failed_total += failed
        cases = passed + failed
        times = f"{cuts} cuts" if power_cuts else f"{cases} case{'' if cases == 1 else 's'}"
        verdict = "nothing lost" if failed == 0 and passed else f"{failed} failed, {skipped} skipped"
        rows.append(f"| {tried} | {times} | {lost} | {verdict} | {took:.0f} s |")
        told_all += [(tried, t) for t in told]
    table = ["| what was tried | how many times | what would count as lost | result | time |", "|---|---|---|---|---|"]
    text = (f"# Reliability\n\nProduced by `python benchmarks/report.py`, {stamp}.\n"
            "Each row runs the project's own fault tests against real parts (SQLite, processes killed with "
            "SIGKILL, a pty paced at 19,200 baud, TCP, Mosquitto, network namespaces, libfaketime).\n\n"
            + "\n".join(table + rows) + "\n" + counts_section(told_all))
    with open(os.path.join(ROOT, "docs", "reliability.md"), "w") as f:
        f.write(text)
    return failed_total


def counts_section(told: list[tuple[str, dict]]) -> str:
    """What the long scenarios counted, as they printed it."""
    if not told:
        return ""
    lines = ["\n## What the long scenarios counted\n"]
    for tried, counts in told:
        lines.append(f"**{tried}** (`{counts.pop('scenario', '')}`):\n")
        lines += ["| count | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in flat(counts)] + [""]
    return "\n".join(lines)


def flat(counts: dict, prefix: str = ""):
    for key, value in counts.items():
        if isinstance(value, dict):
            yield from flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


if __name__ == "__main__":
    sys.exit(main())
