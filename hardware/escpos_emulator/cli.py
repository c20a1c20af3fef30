"""``python -m escpos_emulator``: a printer on a pty and/or a TCP port, driven from stdin.

Each document is shown on stdout as it comes out of the printer. Commands
are read one per line from stdin and each is answered with one line,
``ok: ...`` or ``error: ...``. End of input (Ctrl-D) quits, like ``quit``.
"""

import argparse
import signal
import sys
import threading

from kiosk.printer.sim import frame

from .emulator import Emulator
from .link import LinkError
from .pty_link import PtyLink
from .tcp_link import TcpLink, check_loopback

HELP = ("paper out|near_end|ok, cover open|close, offline on|off, error on|off, "
        "status normal|silent|garbage, unplug, replug, state, help, quit")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m escpos_emulator",
                                     description="An ESC/POS thermal printer on a pty and/or a TCP port.")
    parser.add_argument("--pty", metavar="PATH", help="symlink to create for the serial port, e.g. /tmp/printer")
    parser.add_argument("--baud", type=int, help="pace the pty like a serial line, e.g. 19200 (default: unpaced)")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen like a network printer, e.g. 127.0.0.1:9100")
    parser.add_argument("--out", metavar="DIR", help="save each document as doc-NNNN.txt and .png here")
    parser.add_argument("--profile", metavar="NAME",
                        help="a python-escpos printer profile, e.g. POS-5890: its ESC t numbering, columns "
                             "and width (the kiosk's printer.profile)")
    parser.add_argument("--columns", type=int, help="text width: 32 for 58 mm paper, 48 for 80 mm (default: "
                                                    "the profile's, else 32)")
    parser.add_argument("--width-px", type=int, help="PNG width: 384 for 58 mm, 576 for 80 mm (default: the "
                                                     "profile's, else 384)")
    args = parser.parse_args(argv)
    if not args.pty and not args.tcp:
        parser.error("give --pty PATH and/or --tcp 127.0.0.1:PORT")
    if args.baud is not None and not args.pty:
        parser.error("--baud paces the pty; give --pty PATH too")
    return args


def printer_options(args) -> dict:
    """Emulator options from --profile, --columns and --width-px; ValueError naming an unknown profile."""
    code_pages, columns, width_px = None, 32, 384
    if args.profile:
        from kiosk import layout
        from kiosk.printer import profiles

        layout.prepare()  # python-escpos' printer database, from the cache
        profile = profiles.load(args.profile)
        code_pages = profile.codecs_by_number()
        columns, width_px = profile.columns or columns, profile.dots or width_px
    return {"columns": args.columns or columns, "width_px": args.width_px or width_px, "code_pages": code_pages}


def parse_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--tcp {text!r} is not HOST:PORT; use e.g. 127.0.0.1:9100")
    return check_loopback(host), int(port)


class Console:
    """stdout shared by the output thread (documents) and the command loop (answers)."""

    def __init__(self, stream, columns: int):
        self.stream, self.columns = stream, columns
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def show(self, document) -> None:
        how = "complete" if document.complete else f"UNCUT, ended by {document.ended_by}"
        if document.interrupted:
            how = f"INTERRUPTED by {document.ended_by}"
        header = f"document {document.number}: {how}, {document.byte_count} bytes"
        files = f"\nsaved {', '.join(document.files)}" if document.files else ""
        self.say(f"{header}\n{frame(document.text(self.columns), self.columns, f'#{document.number:04d}')}{files}")


def command_table(emulator: Emulator, links: list) -> dict:
    def each_link(action):
        return lambda: [getattr(link, action)() for link in links]

    return {
        "paper out": lambda: emulator.set_paper("out"),
        "paper near_end": lambda: emulator.set_paper("near_end"),
        "paper ok": lambda: emulator.set_paper("ok"),
        "cover open": emulator.open_cover,
        "cover close": emulator.close_cover,
        "offline on": lambda: emulator.set_offline(True),
        "offline off": lambda: emulator.set_offline(False),
        "error on": lambda: emulator.set_error(True),
        "error off": lambda: emulator.set_error(False),
        "status normal": lambda: emulator.status_mode("normal"),
        "status silent": lambda: emulator.status_mode("silent"),
        "status garbage": lambda: emulator.status_mode("garbage"),
        "unplug": each_link("unplug"),
        "replug": each_link("replug"),
    }


def run_commands(lines, emulator: Emulator, links: list, console: Console) -> None:
    table = command_table(emulator, links)
    for raw in lines:
        command = " ".join(raw.split()).lower()
        if not command:
            continue
        if command == "quit":
            console.say("ok: quit")
            return
        if command == "help":
            console.say(f"ok: commands: {HELP}")
        elif command == "state":
            saving = f"; SAVE FAILED: {emulator.save_error}" if emulator.save_error else ""
            console.say(f"ok: {describe(emulator.state)}{saving}; {', '.join(map(repr, links))}")
        elif command in table:
            try:
                table[command]()
            except OSError as exc:  # replug onto a port someone took meanwhile
                console.say(f"error: {command}: {exc}")
                continue
            console.say(f"ok: {command}")
        else:
            console.say(f"error: unknown command {raw.strip()!r}; valid: {HELP}")


def describe(state) -> str:
    faults = state.faults
    armed = f" paper_out_in={state.paper_out_in}" if state.paper_out_in is not None else ""
    return (f"paper={faults.paper}{armed} cover={'open' if faults.cover_open else 'closed'} "
            f"offline={'on' if faults.offline else 'off'} error={'on' if faults.error else 'off'} "
            f"status={state.status_mode} can_print={'yes' if state.can_print else 'no'} "
            f"received={state.received_bytes} dropped={state.dropped_bytes} documents={state.documents}")


def open_links(args, emulator: Emulator) -> list:
    links = []
    try:
        if args.pty:
            links.append(PtyLink(emulator, args.pty, baud=args.baud))
        if args.tcp:
            host, port = parse_hostport(args.tcp)
            links.append(TcpLink(emulator, host, port))
    except BaseException:
        for link in links:
            link.close()
        raise
    return links


def main(argv=None, stdin=None, stdout=None) -> int:
    args = parse_args(argv)
    try:
        options = printer_options(args)
        console = Console(stdout or sys.stdout, options["columns"])
        emulator = Emulator(args.out, **options)
    except (OSError, ValueError) as exc:
        print(f"escpos_emulator: {exc}", file=sys.stderr)
        return 2
    links = []
    try:
        links = open_links(args, emulator)
        emulator.on_document(console.show)
        console.say(f"ready: {', '.join(map(repr, links))}; commands: {HELP}")
        signal.signal(signal.SIGTERM, _interrupt)
        run_commands(stdin or sys.stdin, emulator, links, console)
    except (LinkError, ValueError) as exc:
        print(f"escpos_emulator: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        for link in links:
            link.close()
        emulator.close()
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM quits as cleanly as Ctrl-C: links closed, symlink removed
