"""A USB printer driven directly through python-escpos's Usb (pyusb), with status.

Needs the optional extra: ``pip install 'antrean[pi]'``. If the kernel's
``usblp`` driver already made ``/dev/usb/lp0`` for the printer, the simpler
``file`` backend works too, but without status answers.
"""

import time

from common.tables import Key
from kiosk.printer.errors import PrinterError
from kiosk.printer.link import LinkLost, LinkPrinter


class UsbPrinter(LinkPrinter):
    OPTIONS = {"usb_vendor_id": Key("int", 0, limits=(0, 0xFFFF), needed="0x04b8"),
               "usb_product_id": Key("int", 0, limits=(0, 0xFFFF), needed="0x0202"),
               "usb_in_ep": Key("int", 0x82, limits=(0, 0xFF)), "usb_out_ep": Key("int", 0x01, limits=(0, 0xFF)),
               **LinkPrinter.OPTIONS}
    ARGUMENTS = {"usb_vendor_id": "vendor_id", "usb_product_id": "product_id", "usb_in_ep": "in_ep",
                 "usb_out_ep": "out_ep"}

    def __init__(self, vendor_id: int, product_id: int, in_ep: int = 0x82, out_ep: int = 0x01,
                 write_timeout_ms: int = 5000, status_timeout_ms: int = 300):
        super().__init__(status_timeout_ms)
        self.vendor_id, self.product_id, self.in_ep, self.out_ep = vendor_id, product_id, in_ep, out_ep
        self.write_timeout_ms = write_timeout_ms
        self._usb = None

    @property
    def name(self) -> str:
        return f"USB {self.vendor_id:04x}:{self.product_id:04x}"

    def _open(self) -> None:
        try:
            import usb.core  # noqa: F401  (pyusb: python-escpos's Usb needs it)
            from escpos.exceptions import DeviceNotFoundError
            from escpos.printer import Usb
        except ImportError:
            raise PrinterError("USB printers need pyusb: pip install 'antrean[pi]', "
                               "or use backend = \"file\" with /dev/usb/lp0") from None
        printer = Usb(self.vendor_id, self.product_id, timeout=self.write_timeout_ms,
                      in_ep=self.in_ep, out_ep=self.out_ep)
        try:
            printer.open(raise_not_found=True)  # never the silent variant
        except DeviceNotFoundError as exc:
            raise PrinterError(f"{self.name} not found: {exc}; check the cable, "
                               "printer.usb_vendor_id / usb_product_id (see `lsusb`)") from None
        self._usb = printer

    def _close(self) -> None:
        printer, self._usb = self._usb, None
        if printer is not None:
            try:
                printer.close()
            except Exception:  # noqa: BLE001  pyusb raises many kinds once unplugged
                pass

    def _device(self):
        return self._usb._device  # not .device: that property silently reopens

    def _write(self, data: bytes) -> None:
        import usb.core

        try:
            self._device().write(self.out_ep, data, self.write_timeout_ms)
        except usb.core.USBTimeoutError:
            raise PrinterError(f"{self.name} took no data for {self.write_timeout_ms} ms") from None
        except usb.core.USBError as exc:
            raise LinkLost(f"{self.name} went away: {exc}") from None

    def _read(self, n: int, deadline: float) -> bytes:
        import usb.core

        timeout_ms = max(1, int((deadline - time.monotonic()) * 1000))
        try:
            return bytes(self._device().read(self.in_ep, max(n, 64), timeout_ms))[:n]
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as exc:
            raise LinkLost(f"{self.name} went away: {exc}") from None
