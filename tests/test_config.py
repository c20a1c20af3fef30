"""Config: layered loading and every bad-input case, each named with its value and fix."""

import subprocess
import sys

import pytest
from conftest import BASE_TOML

from kiosk import config as kconfig
from kiosk.errors import ConfigError

EXAMPLE = "hardware/kiosk.example.toml"


def problems_of(text: str, env=None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        kconfig.loads(text, env=env or {})
    return err.value.problems


def base(tmp_path, replace=None, extra=""):
    text = BASE_TOML.format(data_dir=tmp_path)
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    return text + extra


def test_example_file_is_valid_and_documents_every_key():
    cfg = kconfig.load(EXAMPLE, env={})
    text = open(EXAMPLE).read()
    for section, keys in kconfig.SCHEMA.items():
        for key in keys:
            assert f"\n{key} = " in text or f"\n# {key} = " in text, f"{section}.{key} undocumented"
    for key in kconfig.SERVICE_SCHEMA:
        assert f"\n{key} = " in text
    assert cfg.timezone == "Asia/Jakarta"


def test_defaults_fill_missing_keys(make_config):
    cfg = make_config()
    assert cfg.calendar.last_ticket_at.hour == 14
    assert cfg.timezone == "Asia/Jakarta"
    assert cfg.buttons["burst_max_tickets"] == 10
    assert cfg.service("A").daily_quota == 3


def test_env_overrides_file(tmp_path):
    env = {"KIOSK_PRINTER_PATH": "/dev/usb/lp1", "KIOSK_CALENDAR_BOOKING_HORIZON_DAYS": "7",
           "KIOSK_ID": "kiosk-9", "KIOSK_CONFIG": "ignored", "OTHER": "x"}
    cfg = kconfig.loads(base(tmp_path), env=env)
    assert (cfg.printer["path"], cfg.calendar.booking_horizon_days, cfg.id) == ("/dev/usb/lp1", 7, "kiosk-9")


def test_file_layer_via_load(tmp_path):
    path = tmp_path / "k.toml"
    path.write_text(base(tmp_path))
    assert kconfig.load(str(path), env={"KIOSK_OFFICE_NAME": "Kecamatan Cipocok Jaya"}).office_name == \
        "Kecamatan Cipocok Jaya"


@pytest.mark.parametrize("replace, extra, expected", [
    ({}, "colour = 1\n", ["unknown key buttons.colour = 1"]),
    ({"[office]": "colour = 1\n[office]"}, "", ["unknown key colour = 1"]),
    ({'[printer]\nbackend = "dummy"': '[printer]\nbackend = "dummy"\npth = "/dev/x"'}, "",
     ["unknown key printer.pth = '/dev/x'", "did you mean 'path'"]),
    ({"daily_quota = 3": 'daily_quota = "3"'}, "", ["services[0].daily_quota = '3'", "whole number"]),
    ({"daily_quota = 3": "daily_quota = -5"}, "", ["services[0].daily_quota = -5 is negative"]),
    ({"daily_quota = 3": "daily_quota = true"}, "", ["services[0].daily_quota = True"]),
    ({'code = "B"': 'code = "A"'}, "", ["services 'A' and 'A' share code = 'A'"]),
    ({'button = "GPIO22"': 'button = "gpio17"'}, "", ["share button = 'gpio17'"]),
    ({'led = "GPIO23"': 'led = "GPIO17"'}, "", ["led = 'GPIO17' is also the button of service 'A'"]),
    ({'holidays = ["2026-12-25"]': 'holidays = ["2026-02-30"]'}, "", ["calendar.holidays = ['2026-02-30']"]),
    ({"booking_horizon_days = 5": 'booking_horizon_days = 5\nopens_at = "8am"'}, "",
     ["calendar.opens_at = '8am'", "HH:MM"]),
    ({"booking_horizon_days = 5": 'booking_horizon_days = 5\nlast_ticket_at = "16:00"'}, "",
     ["last_ticket_at 16:00 <= closes_at 15:00"]),
    ({"booking_horizon_days = 5": "booking_horizon_days = 0"}, "", ["calendar.booking_horizon_days = 0"]),
    ({"booking_horizon_days = 5": 'open_weekdays = ["mon", "funday"]'}, "",
     ["calendar.open_weekdays = ['mon', 'funday']"]),
    ({'name = "Disdukcapil Kota Serang"\n': 'name = "x"\ntimezone = "Asia/Serang"\n'}, "",
     ["office.timezone = 'Asia/Serang'"]),
    ({'id = "serang-kota"': 'id = "Serang Kota"'}, "", ["office.id = 'Serang Kota'"]),
    ({'backend = "dummy"': 'backend = "laser"'}, "", ["printer.backend = 'laser' is not allowed"]),
    ({'backend = "dummy"': 'backend = "dummy"\npaper_width_mm = 57'}, "", ["printer.paper_width_mm = 57"]),
    ({'code = "A"': 'code = "AB"'}, "", ["services[0].code = 'AB'"]),
    ({'backend = "dummy"': 'backend = "dummy"\nprofile = "TM-X1"'}, "", ["printer.profile = 'TM-X1'", "TM-T88III"]),
    ({'backend = "dummy"': 'backend = "dummy"\ncode_page = "latin_1"'}, "", ["code page 'latin_1' is not in"]),
])
def test_bad_input_names_key_value_and_fix(tmp_path, replace, extra, expected):
    problems = problems_of(base(tmp_path, replace, extra))
    text = "\n".join(problems)
    for fragment in expected:
        assert fragment in text
    for problem in problems:
        assert ";" in problem or "does not hold" in problem  # every message carries a fix


def test_missing_services_and_office(tmp_path):
    text = "\n".join(problems_of('data_dir = "/tmp"\n'))
    assert "office.id is missing" in text and "no [[services]] defined" in text


def test_bad_env_variable_is_named(tmp_path):
    text = "\n".join(problems_of(base(tmp_path), env={"KIOSK_PRINTER_PTH": "x"}))
    assert "KIOSK_PRINTER_PTH='x'" in text


def test_env_value_with_wrong_type_is_named(tmp_path):
    text = "\n".join(problems_of(base(tmp_path), env={"KIOSK_BUTTONS_COOLDOWN_MS": "soon"}))
    assert "buttons.cooldown_ms = 'soon'" in text


def test_invalid_toml_names_the_line(tmp_path):
    text = "\n".join(problems_of("[office\nid = 1"))
    assert "not valid TOML" in text and "line 1" in text


def test_agent_sections_pass_through(tmp_path):
    cfg = kconfig.loads(base(tmp_path, extra='\n[mqtt]\nhost = "127.0.0.1"\n'))
    assert cfg.other == {"mqtt": {"host": "127.0.0.1"}}


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})


def test_check_config_cli_ok():
    result = run_cli("check-config", EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_config_cli_exit_2_and_messages(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(base(tmp_path, {"daily_quota = 3": "daily_quota = -1"}, extra="colour = 1\n"))
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert "services[0].daily_quota = -1" in result.stderr and "colour" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_missing_file(tmp_path):
    result = run_cli("check-config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2 and "cannot read the config file" in result.stderr


def test_run_refuses_invalid_config(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(base(tmp_path, {"daily_quota = 3": "daily_quota = -1"}))
    result = run_cli("run", "--config", str(path))
    assert result.returncode == 2 and "nothing was started" in result.stderr
    assert not (tmp_path / "ledger.sqlite3").exists()


def test_panel_button_source_from_config_alone(tmp_path):
    from kiosk.app import buttons_from_config
    from kiosk.buttons.panel import PanelButtons

    cfg = kconfig.loads(base(tmp_path, {"cooldown_ms = 0": 'cooldown_ms = 0\nbackend = "panel"\n'
                                                         'panel_port = "/dev/antrean-panel"'}))
    source = buttons_from_config(cfg)
    assert isinstance(source, PanelButtons)
    source.close()
    text = "\n".join(problems_of(base(tmp_path, {"cooldown_ms = 0": 'cooldown_ms = 0\nbackend = "panel"'})))
    assert "buttons.panel_port is not set" in text
