"""The embedded demo: no Pi, no printer, no broker, no network.

Keys on the keyboard stand in for the buttons. The printer is the ESC/POS
emulator on a real pseudo-terminal paced at 19,200 baud: the kiosk's serial
backend sends it the real bytes and asks it real DLE EOT status, and each
ticket it decodes is shown as text and saved as a PNG. Lines starting with
"!" go to the emulator, so a paper-out or an unplugged cable can be tried.
"""

import io
import os
import sys
import threading

from kiosk import config as kconfig

BAUD = 19200
DEMO_TOML = """
id = "demo-kiosk"
data_dir = "{data_dir}"

[office]
id = "demo"
name = "Disdukcapil Kota Serang (DEMO)"
timezone = "Asia/Jakarta"

[calendar]
open_weekdays = ["mon", "tue", "wed", "thu", "fri"]
opens_at = "08:00"
last_ticket_at = "14:00"
closes_at = "15:00"
booking_horizon_days = 5

[[services]]
code = "A"
name = "Perekaman e-KTP"
daily_quota = 150

[[services]]
code = "B"
name = "Kartu Keluarga"
daily_quota = 150

[[services]]
code = "C"
name = "Akta Kelahiran"
daily_quota = 3        # small, so a few presses show tickets moving to the next day

[printer]
backend = "serial"
serial_port = "{data_dir}/ttyPRINTER"
baud_rate = {baud}
paper_width_mm = {paper}

[buttons]
backend = "keyboard"
cooldown_ms = 0

[log]
format = "text"
"""

WELCOME = """\
Antrean demo: type a letter and Enter to press that service's button
  a = Perekaman e-KTP   b = Kartu Keluarga   c = Akta Kelahiran (quota 3)
Printer faults: !paper out  !paper ok  !paper near_end  !cover open  !cover close
                !unplug  !replug  (a ticket cut short is printed again, CETAK ULANG)
Ctrl-D (or Ctrl-C) ends. Tickets are shown here and saved as PNG in {tickets}"""


def demo_config(data_dir: str, paper: int = 58) -> kconfig.Config:
    data_dir = os.path.abspath(data_dir).replace("\\", "/")
    return kconfig.loads(DEMO_TOML.format(data_dir=data_dir, paper=paper, baud=BAUD), source="<embedded demo>")


def run(data_dir: str, paper: int = 58, press: str | None = None) -> int:
    """Run the demo kiosk against the emulator; ``press`` keys instead of the terminal."""
    from escpos_emulator import Emulator, PtyLink
    from escpos_emulator.cli import Console

    from common.log import setup_logging
    from kiosk import layout
    from kiosk.app import buttons_from_config, run_kiosk

    cfg = demo_config(data_dir, paper)
    setup_logging(cfg.log["level"], cfg.log["format"])
    sheet = layout.Paper(paper)
    tickets = os.path.join(cfg.data_dir, "tickets")
    os.makedirs(cfg.data_dir, exist_ok=True)
    with Emulator(out_dir=tickets, columns=sheet.columns, width_px=sheet.dots) as emulator:
        link = PtyLink(emulator, cfg.printer["serial_port"], baud=BAUD)
        try:
            emulator.on_document(Console(sys.stdout, sheet.columns).show)
            if press is None:
                print(WELCOME.format(tickets=tickets), file=sys.stderr)
            keys = _split_input(io.StringIO(press + "\n") if press is not None else sys.stdin, emulator, link)
            return run_kiosk(cfg, buttons_from_config(cfg, stream=keys))
        finally:
            link.close()


def _split_input(lines, emulator, link):
    """Button keys go to the keyboard source through a pipe; "!" lines drive the emulator."""
    from escpos_emulator.cli import command_table

    table = command_table(emulator, [link])
    read_fd, write_fd = os.pipe()

    def pump():
        with os.fdopen(write_fd, "w") as keys:
            for line in lines:
                if line.startswith("!"):
                    _fault(table, line[1:].strip().lower())
                else:
                    keys.write(line)
                    keys.flush()

    threading.Thread(target=pump, name="demo-input", daemon=True).start()
    return os.fdopen(read_fd)


def _fault(table: dict, command: str) -> None:
    if command not in table:
        print(f"unknown printer command {command!r}; use one of: {', '.join(table)}", file=sys.stderr)
        return
    table[command]()
    print(f"printer: {command}", file=sys.stderr)
