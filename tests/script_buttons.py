"""A button source that is not shipped: the whole of it is this file plus one registration.

tests/test_backend_registry.py registers it as "script": it presses the services named in
``script_presses`` once each, in order, then runs dry like a keyboard at EOF.
"""

from common.tables import Key
from kiosk.buttons import ButtonSource, LedMode


class ScriptButtons(ButtonSource):
    OPTIONS = {"script_presses": Key("str", "", needed='"AB"')}
    ARGUMENTS = {"script_presses": "presses"}

    def __init__(self, buttons, presses: str):
        super().__init__(buttons)
        self.presses = presses
        self.leds: dict[str, LedMode] = {}

    @classmethod
    def config_problems(cls, options: dict, services) -> list[str]:
        codes = {service.code for service in services}
        return [f"buttons.script_presses = {options['script_presses']!r} presses {key!r}, no service's code; "
                "use the codes of [[services]]" for key in (options["script_presses"] or "") if key not in codes]

    def _start(self, on_press, on_end) -> None:
        for service in self.presses:
            self._report(on_press, service)
        if on_end is not None:
            on_end()

    def _set_led(self, service: str, mode: LedMode) -> None:
        self.leds[service] = mode
