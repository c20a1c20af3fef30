"""The ``edge-agent`` command: run, probe (one round as a table), outages (history).

Exit status: 0 done, 1 the operation failed, 2 bad configuration or arguments.
"""

import argparse
import datetime as dt
import json
import os
import signal
import sys
import time

from edge_agent.errors import AgentConfigError, AgentError


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except AgentConfigError as exc:
        from common.problems import say_problems

        say_problems(args.config, exc.problems, prog="edge-agent")
        return 2
    except AgentError as exc:
        print(f"edge-agent: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent", description="Antrean edge agent")
    parser.add_argument("--config", default=os.environ.get("KIOSK_CONFIG"),
                        help="the kiosk's TOML file (default: $KIOSK_CONFIG)")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    sub.add_parser("run", help="report health and network over MQTT until stopped").set_defaults(func=cmd_run)
    p = sub.add_parser("probe", help="run one round of network probes and print a table")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_probe)
    p = sub.add_parser("outages", help="the outage history")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_outages)
    return parser


def _configs(args):
    from edge_agent import config

    if not args.config:
        raise AgentConfigError(["no config file given; pass --config FILE or set KIOSK_CONFIG"])
    return config.load(args.config)


def cmd_run(args) -> int:
    from common.log import setup_logging
    from edge_agent.agent import Agent

    kiosk, cfg = _configs(args)
    lobby_settings = _lobby_settings(kiosk)  # a bad [lobby] is a config error before anything opens
    setup_logging(kiosk.log["level"], kiosk.log["format"])
    agent = Agent(kiosk, cfg)
    lobby = _start_lobby(kiosk, lobby_settings) if lobby_settings is not None else None
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    try:
        agent.run()
    except KeyboardInterrupt:
        agent.stop()
    finally:
        if lobby is not None:
            lobby.stop()
    return 0


def _lobby_settings(kiosk):
    if "lobby" not in kiosk.other:
        return None
    from kiosk.seam import ConfigError
    from lobby import config as lconfig

    try:
        return lconfig.from_kiosk_config(kiosk)
    except ConfigError as exc:
        raise AgentConfigError(exc.problems) from None


def _start_lobby(kiosk, settings):
    """With a [lobby] section the agent's service also serves the lobby page, in a thread."""
    import logging

    from lobby import create_app
    from lobby.serve import LobbyServer

    log = logging.getLogger("lobby")
    try:
        server = LobbyServer(create_app({"KIOSK": kiosk, "LOBBY": settings}), settings.host, settings.port).start()
    except OSError as exc:  # the page is a convenience (port taken, key unreadable); the agent's reports are not
        log.error("lobby page not served", extra={"error": str(exc), "port": settings.port})
        return None
    log.info("lobby page", extra={"url": server.url})
    return server


def cmd_probe(args) -> int:
    from edge_agent.agent import build_monitor

    kiosk, cfg = _configs(args)
    report = build_monitor(kiosk, cfg, clock=time.time).run_round().to_dict()
    print(json.dumps(report, indent=2) if args.json else format_round(report))
    return 0


def cmd_outages(args) -> int:
    from edge_agent.outages import OutageLog

    kiosk, cfg = _configs(args)
    path = os.path.join(cfg.data_dir, "outages.sqlite3")
    if not os.path.exists(path):
        raise AgentError(f"no outage log at {path}; has the agent run with this config?")
    log = OutageLog(path)
    try:
        rows = log.history(args.limit)
    finally:
        log.close()
    print(json.dumps(rows, indent=2) if args.json else format_outages(rows, kiosk.tz))
    return 0


def format_round(report: dict) -> str:
    lines = [f"{'target':<16} {'state':<11} {'result':<12} {'rtt ms':>8} {'loss':>6}  detail"]
    for name, target in report["targets"].items():
        last = target.get("last") or {}
        rtt = f"{last['rtt_ms']:.1f}" if last.get("rtt_ms") is not None else "-"
        loss = f"{last['loss'] * 100:.0f}%" if last.get("loss") is not None else "-"
        lines.append(f"{name:<16} {target['state']:<11} {round_result(last):<12} {rtt:>8} {loss:>6}  "
                     f"{last.get('detail', '')}")
    verdict = report["verdict"]
    cause = (verdict.get("cause") or {}).get("text")
    lines.append(f"office: {verdict.get('status')}" + (f"; likely cause: {cause}" if cause else ""))
    if verdict.get("stopped_services"):
        lines.append(f"stopped services: {', '.join(verdict['stopped_services'])}")
    return "\n".join(lines)


def round_result(last: dict) -> str:
    """This round's word: a probe that could not run says nothing about the target, so it is no FAIL."""
    if not last:
        return "-"
    if last.get("inconclusive"):
        return "inconclusive"
    return "ok" if last.get("ok") else "FAIL"


def format_outages(rows: list[dict], tz) -> str:
    """A table in the office's time (as the lobby shows it), with the cause and why it started."""
    if not rows:
        return "no outages recorded"
    zone = dt.datetime.now(tz).strftime("%Z") or str(tz)
    lines = [f"times in {zone}",
             f"{'target':<16} {'kind':<12} {'start':<16} {'end':<16} {'duration':>10}  {'cause':<20} reason"]
    for row in rows:
        end = "(still open)" if row["open"] else _local(row["end"], tz)
        lines.append(f"{row['target']:<16} {row['kind']:<12} {_local(row['start'], tz):<16} {end:<16} "
                     f"{row['duration_s']:>8.0f} s  {row.get('cause') or '-':<20} {row.get('reason') or ''}")
    return "\n".join(lines)


def _local(stamp: str, tz) -> str:
    return dt.datetime.fromisoformat(stamp).astimezone(tz).strftime("%Y-%m-%d %H:%M")
