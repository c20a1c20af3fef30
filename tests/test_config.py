"""Config: layered loading and every bad-input case, each named with its value and fix."""

import subprocess
import sys

import pytest
from support.config import BASE_TOML

from common.config_file import MAX_FILE_BYTES
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
    for section, keys in kconfig.schema().items():
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
    ({'button = "GPIO22"': 'button = "gpio17"'}, "",
     ["service 'B' button = 'gpio17' is GPIO17, already the button of service 'A' (button = 'GPIO17')"]),
    ({'led = "GPIO23"': 'led = "GPIO17"'}, "",
     ["service 'B' led = 'GPIO17' is GPIO17, already the button of service 'A'"]),
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


# ---- what outside testing found: each case through `kiosk check-config`, exit 2, no traceback ----

def check_config(path) -> tuple[int, str]:
    """`kiosk check-config PATH` in this process: its exit status and what it said."""
    import contextlib
    import io

    from kiosk.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check-config", str(path)])
    return code, out.getvalue() + err.getvalue()




@pytest.mark.parametrize("replace, extra, expected", [
    ({"booking_horizon_days = 5": "booking_horizon_days = 99999999999"}, "",
     "calendar.booking_horizon_days = 99999999999 is out of range; set 1 to 366"),
    ({}, "[clock]\nmax_leap_days = 99999999999\n", "clock.max_leap_days = 99999999999 is out of range; set 1 to 366"),
    ({'id = "kiosk-1"': 'id = "kiosk-1"\nheartbeat_stale_s = 1e9'}, "", "heartbeat_stale_s = 1000000000.0 is not a whole number"),
    ({'id = "kiosk-1"': 'id = "kiosk-1"\nheartbeat_stale_s = 99999999999'}, "",
     "heartbeat_stale_s = 99999999999 is out of range; set 3 to 3600"),
    ({'backend = "dummy"': 'backend = "tcp"\nhost = "127.0.0.1"\ntcp_port = 70000'}, "",
     "printer.tcp_port = 70000 is out of range; set 1 to 65535"),
    ({'backend = "dummy"': 'backend = "dummy"\nconnect_timeout_ms = 1e20'}, "",
     "printer.connect_timeout_ms = 1e+20 is not a whole number"),
    ({'backend = "dummy"': 'backend = "dummy"\nconnect_timeout_ms = 100000000000000000000'}, "",
     "printer.connect_timeout_ms = 100000000000000000000 is out of range; set 1 to 60000"),
    ({}, "panel_reconnect_s = inf\n", "buttons.panel_reconnect_s = inf is not a finite number, e.g. 1.0"),
    ({}, "panel_reconnect_s = nan\n", "buttons.panel_reconnect_s = nan is not a finite number, e.g. 1.0"),
    ({}, "panel_reconnect_s = 0\n", "buttons.panel_reconnect_s = 0.0 is out of range; set 0.1 to 600"),
    ({}, "panel_reconnect_s = -1.5\n", "buttons.panel_reconnect_s = -1.5 is out of range; set 0.1 to 600"),
    ({}, "panel_baud_rate = 0\n", "buttons.panel_baud_rate = 0 is out of range; set 1200 to 4000000"),
    ({}, "panel_baud_rate = -9600\n", "buttons.panel_baud_rate = -9600 is out of range; set 1200 to 4000000"),
    ({'button = "GPIO22"': "button = 17"}, "",
     "service 'B' button = 17 is GPIO17, already the button of service 'A' (button = 'GPIO17')"),
    ({'button = "GPIO22"': 'button = "BOARD11"'}, "",
     "service 'B' button = 'BOARD11' is GPIO17, already the button of service 'A'"),
    ({'led = "GPIO23"': 'led = "J8:11"'}, "", "service 'B' led = 'J8:11' is GPIO17, already the button of service 'A'"),
    ({'led = "GPIO23"': 'led = "BCM27"'}, "", "service 'B' led = 'BCM27' is GPIO27, already the led of service 'A'"),
    ({'led = "GPIO23"': 'led = "BOARD1"'}, "", "services[1].led = 'BOARD1' is header pin 1: 3V3 power, not a GPIO"),
    ({'led = "GPIO23"': 'led = "BOARD6"'}, "", "services[1].led = 'BOARD6' is header pin 6: ground, not a GPIO"),
    ({'led = "GPIO23"': "led = 40"}, "", "services[1].led = 40 is not on the 40-pin header; use GPIO0 to GPIO27"),
    ({'led = "GPIO23"': 'led = "pin 23"'}, "", "services[1].led = 'pin 23' is not a pin name; write it as 17"),
    ({"cooldown_ms = 0": 'cooldown_ms = 0\nbackend = "panel"\npanel_port = "/dev/antrean-panel"'},
     "".join(f'[[services]]\ncode = "{c}"\nname = "Layanan {c}"\n' for c in "CDEFGHI"),
     'buttons.backend = "panel" with 9 [[services]]: the button panel has at most 8 buttons'),
    ({'id = "kiosk-1"': 'id = "kiosk-1\\n"'}, "", "id = 'kiosk-1\\n' names MQTT topics"),
    ({'id = "serang-kota"': 'id = "serang-kota\\n"'}, "", "office.id = 'serang-kota\\n' names MQTT topics"),
    ({'id = "kiosk-1"': 'id = "bridge"'}, "", "id = 'bridge' is a topic word of antrean/<office>/"),
    ({'id = "kiosk-1"': 'id = "cmd"'}, "", "id = 'cmd' is a topic word of antrean/<office>/"),
    ({'data_dir = "{data_dir}"': 'data_dir = ""'}, "", "data_dir = '' is no directory path; set one"),
    ({'data_dir = "{data_dir}"': 'data_dir = "/etc/hostname/antrean"'}, "",
     "data_dir = '/etc/hostname/antrean' is under '/etc/hostname', which is not a directory; choose a directory"),
    ({'data_dir = "{data_dir}"': 'data_dir = "/etc/hostname"'}, "", "data_dir = '/etc/hostname' is not a directory"),
    ({'data_dir = "{data_dir}"': 'data_dir = "/var/lib/a\\u0000b"'}, "",
     "data_dir = '/var/lib/a\\x00b' is no directory path; set one"),
    ({"daily_quota = 3": "daily_quota = 100000000000"}, "",
     "services[0].daily_quota = 100000000000 is out of range; set 0 to 9999"),
])
def test_check_config_refuses_what_outside_testing_found(tmp_path, replace, extra, expected):
    text = BASE_TOML.replace('data_dir = "{data_dir}"', f'data_dir = "{tmp_path}"') \
        if 'data_dir = "{data_dir}"' not in replace else BASE_TOML
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "kiosk.toml"
    path.write_text(text + extra)
    code, said = check_config(path)
    assert code == 2, said
    assert expected in said
    assert "nothing was started or changed" in said


def test_one_pin_written_three_ways_is_one_bcm_number(tmp_path):
    """17, "GPIO17" and "BOARD11" come out as gpiozero's one name for the pin."""
    for written in ("17", '"GPIO17"', '"gpio17"', '"BCM17"', '"BOARD11"', '"J8:11"', '"17"'):
        cfg = kconfig.loads(base(tmp_path, {'button = "GPIO17"': f"button = {written}"}))
        assert (cfg.service("A").button, str(cfg.service("A").button)) == (17, "GPIO17"), written


def test_header_table_is_gpiozeros(tmp_path):
    """Our BOARD -> BCM table against gpiozero's own board data, all 40 pins of the header."""
    from gpiozero.pins.mock import MockFactory
    from gpiozero.pins.pi import PinInvalidPin

    from kiosk.pins import bcm_pin

    factory = MockFactory(revision="d03114")  # a Pi 4B, the kiosk's board
    try:
        for number in range(1, 41):
            ours, _ = bcm_pin(f"BOARD{number}")
            try:
                theirs = factory.board_info.to_gpio(f"BOARD{number}")
            except PinInvalidPin:
                theirs = None
            assert (str(ours) if ours is not None else None) == theirs, number
    finally:
        factory.close()


def test_kiosk_ids_that_are_fine(tmp_path):
    for kiosk_id in ("kiosk-1", "k", "loket_2", "a" * 64):
        assert kconfig.loads(base(tmp_path, {'id = "kiosk-1"': f'id = "{kiosk_id}"'})).id == kiosk_id
    assert "names MQTT topics" in "\n".join(problems_of(base(tmp_path, {'id = "kiosk-1"': f'id = "{"a" * 65}"'})))


@pytest.mark.parametrize("content, expected", [
    (b'id = "kiosk-\xff"\n', "byte 0xff at line 1 is not UTF-8; save the file as UTF-8"),
    (b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", "arrays or tables nested too deeply to read"),
    (b"x = " + b"{ y = " * 3000 + b"1" + b" }" * 3000 + b"\n", "arrays or tables nested too deeply to read"),
    (b"# " + b"x" * (MAX_FILE_BYTES + 10) + b"\n", f"is larger than {MAX_FILE_BYTES} bytes"),
])
def test_unreadable_config_files(tmp_path, content, expected):
    path = tmp_path / "kiosk.toml"
    path.write_bytes(content)
    code, said = check_config(path)
    assert code == 2 and expected in said and str(path) in said, said


def test_a_utf8_bom_is_no_fault(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_bytes(b"\xef\xbb\xbf" + base(tmp_path).encode())
    assert check_config(path)[0] == 0


def test_deep_nesting_in_an_environment_value_is_a_string_not_a_crash(tmp_path):
    cfg = kconfig.loads(base(tmp_path), env={"KIOSK_PRINTER_PATH": "[" * 5000})
    assert cfg.printer["path"] == "[" * 5000  # not TOML, so taken as the string it is


@pytest.mark.parametrize("make", ["fifo", "zero", "directory"])
def test_check_config_does_not_hang_on_what_is_no_file(tmp_path, make):
    """A real process: a FIFO with no writer and /dev/zero made check-config wait or read forever."""
    import os

    path = {"fifo": tmp_path / "kiosk.toml", "zero": "/dev/zero", "directory": tmp_path}[make]
    if make == "fifo":
        os.mkfifo(path)
    result = subprocess.run([sys.executable, "-m", "kiosk", "check-config", str(path)], capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    kind = {"fifo": "a FIFO (named pipe)", "zero": "a character device", "directory": "a directory"}[make]
    assert result.returncode == 2, result.stderr
    assert f"{path}: is {kind}, not a config file; give the path of the TOML file" in result.stderr
    assert "Traceback" not in result.stderr


def test_non_utf8_and_deep_files_through_the_real_command(tmp_path):
    for name, content in (("latin1.toml", 'name = "Layanan Kependudukan \xe9"\n'.encode("latin-1")),
                          ("deep.toml", b"a = " + b"[" * 5000 + b"]" * 5000)):
        (tmp_path / name).write_bytes(content)
        result = run_cli("check-config", str(tmp_path / name))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


def test_readers_find_the_ledger_under_a_data_dir_with_a_hash(tmp_path):
    """`#` (and `?`) in data_dir: the read-only readers open the kiosk's ledger, not a new file beside it."""
    import datetime as dt

    from support import at

    from kiosk.ledger import Ledger, open_existing

    for name in ("loket#1", "loket?2", "loket%203"):
        data_dir = tmp_path / name
        data_dir.mkdir()
        cfg = kconfig.loads(base(data_dir))
        writer = Ledger(cfg.ledger_path, cfg.office_id, cfg.tz)
        ticket = writer.issue_ticket(cfg.service("A"), [dt.date(2026, 11, 23)], at("2026-11-23 09:00"))
        writer.close()
        before = sorted(p.name for p in tmp_path.iterdir())
        reader = open_existing(cfg)  # read-only, as `kiosk status` and the agent open it
        try:
            assert reader.find("A", dt.date(2026, 11, 23), 1).id == ticket.id
        finally:
            reader.close()
        assert sorted(p.name for p in tmp_path.iterdir()) == before, "a reader made a file"
