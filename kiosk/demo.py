"""The embedded demo: no Pi, no printer, no broker, no network.

Keys on the keyboard stand in for the buttons; the simulated printer
decodes the real ESC/POS bytes, shows each ticket as text and saves a PNG.
"""

import io
import os

from kiosk import config as kconfig

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
backend = "sim"
out_dir = "{data_dir}/tickets"
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
Ctrl-D (or Ctrl-C) ends. Tickets are shown here and saved as PNG under the data dir."""


def demo_config(data_dir: str, paper: int = 58) -> kconfig.Config:
    data_dir = os.path.abspath(data_dir).replace("\\", "/")
    return kconfig.loads(DEMO_TOML.format(data_dir=data_dir, paper=paper), source="<embedded demo>")


def key_stream(keys: str | None):
    """The stream the keyboard source reads: given keys, or the terminal."""
    return io.StringIO(keys + "\n") if keys is not None else None

