"""The ``kiosk`` command: run, demo, check-config, status, quota, void, reprint, clock.

Exit status: 0 done, 1 the operation failed (the message says why), 2 bad
configuration or bad arguments.
"""

import argparse
import datetime as dt
import json
import logging
import os
import sys

from common.problems import say_problems
from kiosk.errors import ConfigError, KioskError

log = logging.getLogger("kiosk")
REQUEST_WAIT_S = 5.0  # a running kiosk takes a request within a second or two


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except ConfigError as exc:
        say_problems(getattr(args, "config", None) or getattr(args, "file", None), exc.problems)
        return 2
    except KioskError as exc:
        print(f"kiosk: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="Antrean queue-ticket kiosk")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    config_arg = {"default": os.environ.get("KIOSK_CONFIG"), "help": "config file (default: $KIOSK_CONFIG)"}

    p = sub.add_parser("run", help="run the kiosk with the configured hardware")
    p.add_argument("--config", **config_arg)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="run with simulated buttons (keyboard) and printer (text + PNG)")
    p.add_argument("--data-dir", default="demo-data", help="where the demo keeps its ledger and tickets")
    p.add_argument("--paper", type=int, choices=(58, 80), default=58)
    p.add_argument("--press", default=None, metavar="KEYS", help='press these keys and exit, e.g. "aab"')
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check-config", help="validate a config file")
    p.add_argument("file")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("status", help="whether the kiosk runs, today's tickets per service, next day with room, "
                                      "printer, clock")
    p.add_argument("--config", **config_arg)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("quota", help="change a day's quota")
    qsub = p.add_subparsers(required=True, metavar="ACTION")
    q = qsub.add_parser("set", help="set SERVICE's quota on DATE to N (never below what is issued)")
    _ticket_args(q, "N")
    q.add_argument("--config", **config_arg)
    q.set_defaults(func=cmd_quota_set)

    for name, func, helptext in (("void", cmd_void, "void a ticket (its number is not reused)"),
                                 ("reprint", cmd_reprint, "print a ticket again, marked CETAK ULANG")):
        p = sub.add_parser(name, help=helptext)
        _ticket_args(p, "NUMBER")
        p.add_argument("--config", **config_arg)
        if name == "void":
            p.add_argument("--reason", default="")
        p.set_defaults(func=func)

    p = sub.add_parser("clock", help="the kiosk's clock")
    csub = p.add_subparsers(required=True, metavar="ACTION")
    c = csub.add_parser("confirm", help="the system clock is right: take it, however far it leapt ahead")
    c.add_argument("--config", **config_arg)
    c.set_defaults(func=cmd_clock_confirm)
    return parser


def _ticket_args(parser, last: str) -> None:
    parser.add_argument("service", metavar="SERVICE", help="service code letter, e.g. A")
    parser.add_argument("date", metavar="DATE", help="YYYY-MM-DD, or 'today'")
    parser.add_argument("value", metavar=last, type=int)


# ---------------------------------------------------------------- commands

def cmd_check_config(args) -> int:
    from kiosk import config, layout

    cfg = config.load(args.file)
    quotas = ", ".join(f"{s.code}={s.daily_quota}" for s in cfg.services)
    print(f"{args.file}: OK (office {cfg.office_id}, kiosk {cfg.id}, services {quotas})")
    print(f"printer: {layout.describe_paper(layout.paper_from_config(cfg.printer))}")
    return 0


def cmd_run(args) -> int:
    from kiosk.app import buttons_from_config, run_kiosk

    cfg = _load(args)
    return run_kiosk(cfg, buttons_from_config(cfg))


def cmd_demo(args) -> int:
    from kiosk import demo

    return demo.run(args.data_dir, args.paper, args.press)


def cmd_status(args) -> int:
    from kiosk.status import format_status, read_status

    status = read_status(_load(args, logs=False))
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def cmd_quota_set(args) -> int:
    from kiosk.seam import open_requests

    cfg = _load(args, logs=False)
    with open_requests(cfg) as kiosk:
        now = kiosk.now()
        service, day = _service(cfg, args.service), _date(args.date, now)
        taken = kiosk.set_quota(service, day, args.value, at=now)
    print(f"quota for {service.code} ({service.name}) on {day}: {args.value} ({taken} already issued)")
    return 0


def cmd_void(args) -> int:
    cfg = _load(args, logs=False)
    ledger, clock = _open_ledger(cfg)
    day = _date(args.date, clock.now())
    ticket = ledger.void(_service(cfg, args.service).code, day, args.value, clock.now(), args.reason)
    print(f"ticket {ticket.label} for {day} is void")
    return 0


def cmd_reprint(args) -> int:
    return _here_or_through_running_kiosk(args, _reprint_here, _reprint_through_running_kiosk)


def _here_or_through_running_kiosk(args, here, through) -> int:
    """``here(cfg, args)`` holding the kiosk's lock; ``through(cfg, args)`` when a running kiosk holds it."""
    from kiosk import lock

    cfg = _load(args, logs=False)
    try:
        held = lock.hold(cfg.data_dir)
    except lock.KioskRunning:
        return through(cfg, args)
    try:
        return here(cfg, args)
    finally:
        lock.release(held)


def _reprint_here(cfg, args) -> int:
    """No kiosk is running: open the printer ourselves."""
    from kiosk.app import build_kiosk

    kiosk = build_kiosk(cfg)
    try:
        day = _date(args.date, kiosk.clock.now())
        ticket = kiosk.reprint(_service(cfg, args.service).code, day, args.value)
    finally:
        kiosk.printer.close()
    print(f"ticket {ticket.label} for {day} reprinted")
    return 0


def _reprint_through_running_kiosk(cfg, args) -> int:
    """The running kiosk owns the printer: leave it a request and watch it being printed."""
    from kiosk.seam import open_requests

    with open_requests(cfg) as kiosk:
        day = _date(args.date, kiosk.now())
        ticket, printed = kiosk.reprint(_service(cfg, args.service).code, day, args.value, REQUEST_WAIT_S)
    if not printed:
        print(f"ticket {ticket.label} for {day}: reprint queued; the kiosk prints it when its printer "
              "is ready (see `kiosk status`)")
        return 1
    print(f"ticket {ticket.label} for {day} reprinted by the running kiosk")
    return 0


def cmd_clock_confirm(args) -> int:
    """Staff vouch for the system clock after a leap the kiosk would not take on its own."""
    return _here_or_through_running_kiosk(args, _confirm_here, _confirm_through_running_kiosk)


def _confirm_here(cfg, args) -> int:
    from kiosk.clock import confirm_clock

    ledger, clock = _open_ledger(cfg)
    try:
        answer = confirm_clock(clock, ledger)
    finally:
        ledger.close()
    return _confirmed(answer, "clock confirmed: the kiosk runs on {now} from its next start")


def _confirm_through_running_kiosk(cfg, args) -> int:
    from kiosk.seam import open_requests

    with open_requests(cfg) as kiosk:
        answer = kiosk.confirm_clock(REQUEST_WAIT_S)
    return _confirmed(answer, "clock confirmed by the running kiosk: it runs on {now}")


def _confirmed(answer: dict, said: str) -> int:
    if not answer["ok"]:
        return _not_confirmed(answer)
    print(said.format(now=_minute(answer["now"])) + f" (it was suspect: {answer['was']})")
    return 0


def _not_confirmed(answer: dict) -> int:
    """Nothing to confirm, or the kiosk did not answer in time: said, and exit 1 (nothing changed)."""
    print(f"kiosk: clock not confirmed: {answer['message']}", file=sys.stderr)
    return 1


def _minute(iso: str) -> str:
    return iso[:16].replace("T", " ")


def _load(args, logs: bool = True):
    from kiosk import config

    if not args.config:
        raise ConfigError(["no config file given; pass --config FILE or set KIOSK_CONFIG "
                           "(try `kiosk demo` to run without one)"])
    cfg = config.load(args.config)
    if logs:
        _setup_logging(cfg)
    return cfg


def _setup_logging(cfg) -> None:
    from common.log import setup_logging

    setup_logging(cfg.log["level"], cfg.log["format"])


def _open_ledger(cfg):
    """The kiosk's ledger, writable, and the clock every writer of it runs on."""
    from kiosk.clock import ledger_clock
    from kiosk.ledger import open_existing

    ledger = open_existing(cfg, readonly=False)
    return ledger, ledger_clock(cfg, ledger)


def _service(cfg, code: str):
    try:
        return cfg.service(code.upper())
    except KeyError:
        codes = ", ".join(s.code for s in cfg.services)
        raise KioskError(f"service {code!r} is not configured; use one of: {codes}") from None


def _date(text: str, now: dt.datetime) -> dt.date:
    if text == "today":
        return now.date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise KioskError(f"date {text!r} is not YYYY-MM-DD (or 'today'), e.g. 2026-11-23") from None
