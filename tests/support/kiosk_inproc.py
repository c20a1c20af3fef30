"""The one way a test builds a kiosk inside its own process: ``build_kiosk`` as ``kiosk run`` would."""

from kiosk.app import build_kiosk


class KioskFactory:
    """Builds in-process kiosks and stops every one it built (the ``kiosks`` fixture closes it).

    Without ``worker`` the kiosk is made ready as ``start()`` would make it, but without the worker
    thread: the test presses (``handle_press``) and ticks itself, so every step happens when it says.
    With ``worker`` it runs as in ``kiosk run``. ``options`` go to ``build_kiosk`` (printer, buttons,
    the clocks).
    """

    def __init__(self):
        self.made = []

    def __call__(self, config, *, worker: bool = False, **options):
        kiosk = build_kiosk(config, **options)
        self.made.append(kiosk)
        if worker:
            kiosk.start()
        else:
            kiosk.printer.open()
            kiosk.tick()
        return kiosk

    def close(self) -> None:
        """Stop every kiosk built so far (again: nothing)."""
        made, self.made = self.made, []
        for kiosk in made:
            kiosk.stop()
