"""A printer backend that is not shipped: the whole of it is this file plus one registration.

tests/test_backend_registry.py registers it as "label" and checks that the kiosk's config
check knows its keys from OPTIONS alone. Each slip is written to a numbered file in
``spool_dir``, ``copies`` times.
"""

import os

from common.tables import Key
from kiosk.printer import Printer


class LabelPrinter(Printer):
    OPTIONS = {
        "label_spool_dir": Key("str", "", needed='"/var/spool/antrean-labels"'),
        "label_copies": Key("int", 1, limits=(1, 5)),
        "label_ink": Key("str", "black", choices=("black", "red")),
    }
    ARGUMENTS = {"label_spool_dir": "spool_dir", "label_copies": "copies", "label_ink": "ink"}

    def __init__(self, spool_dir: str, copies: int = 1, ink: str = "black"):
        super().__init__()
        self.spool_dir, self.copies, self.ink = spool_dir, copies, ink
        self.slips = 0

    def _open(self) -> None:
        os.makedirs(self.spool_dir, exist_ok=True)

    def _send(self, data: bytes) -> None:
        for _ in range(self.copies):
            self.slips += 1
            with open(os.path.join(self.spool_dir, f"slip-{self.slips:04d}.bin"), "wb") as f:
                f.write(data)
