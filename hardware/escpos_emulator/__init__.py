"""An ESC/POS thermal printer emulator on real links: a pseudo-terminal and TCP.

    emulator = Emulator(out_dir="tickets")
    link = PtyLink(emulator, "/tmp/printer", baud=19200)   # kiosk: serial port /tmp/printer
    net = TcpLink(emulator, port=9100)                      # kiosk: network printer 127.0.0.1:9100
    emulator.paper_out_after(200)                           # faults, mid-ticket
    emulator.wait_for_documents(1, timeout=5)

See docs/emulator.md.
"""

from .emulator import Emulator
from .link import LinkError
from .mechanism import Document, Faults, Mechanism, State, status_byte
from .pty_link import PtyLink
from .tcp_link import TcpLink

__all__ = ["Emulator", "Mechanism", "Document", "Faults", "State", "status_byte",
           "PtyLink", "TcpLink", "LinkError"]
