"""A backend is one file plus its registration: the config check, the env layer and the kiosk's
construction all follow from what its class declares (issue 13). Drivers load only when chosen."""

import subprocess
import sys

import pytest
from support import FakeSystemClock, at
from support.config import BASE_TOML

from common.backends import Configurable, Registry
from common.tables import Key
from kiosk import config as kconfig
from kiosk.app import build_kiosk, buttons_from_config, printer_options
from kiosk.buttons import BACKENDS as BUTTON_SOURCES
from kiosk.errors import ConfigError
from kiosk.printer import BACKENDS as PRINTERS

EXAMPLE = "hardware/kiosk.example.toml"
LABEL = '[printer]\nbackend = "label"\n'


@pytest.fixture
def label():
    with PRINTERS.registered("label", "label_printer:LabelPrinter"):
        yield


def config_text(tmp_path, printer: str) -> str:
    return BASE_TOML.format(data_dir=tmp_path).replace('[printer]\nbackend = "dummy"\n', LABEL + printer)


def problems_of(text: str, env=None) -> str:
    with pytest.raises(ConfigError) as err:
        kconfig.loads(text, env=env or {})
    return "\n".join(err.value.problems)


def test_a_registered_backend_is_configured_and_prints(label, tmp_path):
    spool = tmp_path / "labels"
    cfg = kconfig.loads(config_text(tmp_path, f'label_spool_dir = "{spool}"\nlabel_ink = "red"\n'),
                        env={"KIOSK_PRINTER_LABEL_COPIES": "2"})
    assert (cfg.printer["label_copies"], cfg.printer["label_ink"]) == (2, "red")
    assert printer_options(cfg) == {"backend": "label", "spool_dir": str(spool), "copies": 2, "ink": "red"}
    kiosk = build_kiosk(cfg, system_clock=FakeSystemClock(at("2026-11-23 09:00")))
    kiosk.start()
    try:
        assert kiosk.handle_press("A").kind == "ticket"
    finally:
        kiosk.stop()
    assert sorted(p.name for p in spool.iterdir()) == ["slip-0001.bin", "slip-0002.bin"]


@pytest.mark.parametrize("printer, expected", [
    ('label_spool_dir = "/x"\nlabel_copies = "two"\n',
     "printer.label_copies = 'two' is not a whole number, e.g. 150; fix the value"),
    ('label_spool_dir = "/x"\nlabel_copies = 9\n', "printer.label_copies = 9 is out of range; set 1 to 5"),
    ('label_spool_dir = "/x"\nlabel_ink = "blue"\n',
     "printer.label_ink = 'blue' is not allowed; use one of ['black', 'red']"),
    ("", "printer.label_spool_dir is not set but printer.backend = 'label' needs it; "
         'set it, e.g. label_spool_dir = "/var/spool/antrean-labels"'),
    ('label_spool_dir = "/x"\nlabel_copis = 2\n', "unknown key printer.label_copis = 2; did you mean 'label_copies'?"),
])
def test_its_bad_options_get_the_standard_messages(label, tmp_path, printer, expected):
    assert expected in problems_of(config_text(tmp_path, printer))


def test_its_options_are_checked_whichever_backend_is_chosen(label, tmp_path):
    text = BASE_TOML.format(data_dir=tmp_path).replace('backend = "dummy"', 'backend = "dummy"\nlabel_copies = 0')
    assert "printer.label_copies = 0 is out of range; set 1 to 5" in problems_of(text)


def test_unregistered_it_is_unknown_again(label, tmp_path):
    text = config_text(tmp_path, 'label_spool_dir = "/x"\n')
    kconfig.loads(text)
    with PRINTERS.registered("label2", "label_printer:LabelPrinter"):
        assert "'dummy', 'label', 'label2']" in problems_of(text.replace('"label"', '"laser"'))
    assert "'dummy', 'label']" in problems_of(text.replace('"label"', '"laser"'))


def test_without_its_registration_its_keys_are_unknown(tmp_path):
    text = config_text(tmp_path, 'label_spool_dir = "/x"\n')
    said = problems_of(text)
    assert "printer.backend = 'label' is not allowed; use one of ['file', 'serial', 'tcp', 'usb', 'sim', " \
           "'dummy']" in said
    assert "unknown key printer.label_spool_dir = '/x'" in said


class One(Configurable):
    OPTIONS = {"timeout_ms": Key("int", 1)}


class Two(Configurable):
    OPTIONS = {"timeout_ms": Key("int", 2)}


def test_two_backends_declaring_one_key_differently_is_a_programmer_error():
    registry = Registry("printer", ValueError, {"one": f"{__name__}:One", "two": f"{__name__}:Two"})
    with pytest.raises(TypeError, match="'two' declares 'timeout_ms' unlike another backend"):
        registry.options()
    with pytest.raises(ValueError, match="is registered already"):
        registry.register("one", f"{__name__}:Two")


DRIVERS = ("usb", "gpiozero", "lgpio", "RPi", "pigpio")


@pytest.mark.parametrize("printer, buttons", [("file", "gpio"), ("usb", "gpio"), ("serial", "panel")])
def test_check_config_imports_no_driver(tmp_path, printer, buttons):
    """Checking a config reads every backend's OPTIONS, but loads no driver, chosen or not."""
    path = tmp_path / "kiosk.toml"
    text = open(EXAMPLE).read().replace('backend = "file"', f'backend = "{printer}"', 1)
    text = text.replace('backend = "gpio"', f'backend = "{buttons}"', 1)
    for old, new in (('serial_port = ""', 'serial_port = "/dev/ttyUSB0"'), ('panel_port = ""', 'panel_port = "/dev/p"'),
                     ("usb_vendor_id = 0", "usb_vendor_id = 1"), ("usb_product_id = 0", "usb_product_id = 1")):
        text = text.replace(old, new)
    path.write_text(text)
    code = ("import contextlib, io, sys\nfrom kiosk.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['check-config', {str(path)!r}]) == 0\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(DRIVERS)!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.fixture
def script():
    with BUTTON_SOURCES.registered("script", "script_buttons:ScriptButtons"):
        yield


def test_a_registered_button_source_is_configured_and_presses(script, tmp_path):
    text = BASE_TOML.format(data_dir=tmp_path) + 'backend = "script"\nscript_presses = "AB"\n'
    cfg = kconfig.loads(text)
    kiosk = build_kiosk(cfg, buttons=buttons_from_config(cfg), system_clock=FakeSystemClock(at("2026-11-23 09:00")))
    kiosk.start()
    assert kiosk.ended.wait(5)
    kiosk.drain()
    kiosk.stop()
    day = at("2026-11-23 09:00").date()
    assert (kiosk.ledger.taken("A", day), kiosk.ledger.taken("B", day)) == (1, 1)


@pytest.mark.parametrize("buttons, expected", [
    ("", "buttons.script_presses is not set but buttons.backend = \"script\" needs it; "
         'set it, e.g. script_presses = "AB"'),
    ('script_presses = "AZ"\n', "buttons.script_presses = 'AZ' presses 'Z', no service's code"),
    ("script_presses = 1\n", "buttons.script_presses = 1 is not a quoted string"),
])
def test_its_bad_options_get_the_standard_messages_too(script, tmp_path, buttons, expected):
    assert expected in problems_of(BASE_TOML.format(data_dir=tmp_path) + 'backend = "script"\n' + buttons)


class Greedy(Configurable):
    OPTIONS = {"cooldown_ms": Key("int", 5)}  # the press guard's key, not a source's


def test_a_backend_taking_a_key_of_the_kiosk_is_a_programmer_error(tmp_path):
    with BUTTON_SOURCES.registered("greedy", f"{__name__}:Greedy"):
        with pytest.raises(TypeError, match=r"\['cooldown_ms'\], keys of the kiosk's own \[buttons\]"):
            kconfig.loads(BASE_TOML.format(data_dir=tmp_path))
