"""Deployment files under hardware/: systemd units, the mosquitto bridge, install.sh."""

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from support import need

REPO = Path(__file__).resolve().parent.parent
HW = REPO / "hardware"
UNITS = ("antrean-kiosk.service", "antrean-agent.service")
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else "python3"


@pytest.mark.parametrize("unit", UNITS)
def test_unit_verifies(unit, tmp_path):
    need(shutil.which("systemd-analyze") is not None, "systemd-analyze is not installed")
    # verify insists that ExecStart's binary exists: point a copy of the unit at stubs.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("kiosk", "edge-agent"):
        (bindir / name).write_text("#!/bin/sh\n")
        (bindir / name).chmod(0o755)
    text = (HW / "systemd" / unit).read_text()
    assert "/opt/antrean/venv/bin/" in text
    (tmp_path / unit).write_text(text.replace("/opt/antrean/venv/bin", str(bindir)))
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / unit)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    # verify exits 0 even for unknown keys and bad values; it only warns on stderr.
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_unit_settings(unit):
    lines = (HW / "systemd" / unit).read_text().splitlines()
    settings = {}
    for i, line in enumerate(lines):
        if line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
            assert lines[i - 1].startswith("#") or lines[i - 1].split("=", 1)[0] == key, f"uncommented: {line}"
    one = {k: v[-1] for k, v in settings.items()}
    assert one["Type"] == "notify" and one["WatchdogSec"] == "30"
    assert one["Restart"] == "always" and one["RestartSec"] == "2"
    assert one["User"] == "antrean" and one["NoNewPrivileges"] == "yes"
    assert one["ProtectSystem"] == "strict" and one["ReadWritePaths"] == "/var/lib/antrean"
    assert one["StandardError"] == "journal"
    assert one["ExecStart"].endswith("--config /etc/antrean/kiosk.toml" if "kiosk" in unit
                                     else "--config /etc/antrean/kiosk.toml run")
    if unit == "antrean-kiosk.service":
        assert set(one["SupplementaryGroups"].split()) == {"lp", "dialout", "gpio", "video"}
        assert one["After"] == "local-fs.target" and "Wants" not in one
        assert one["CapabilityBoundingSet"] == "" and "PrivateDevices" not in one
    else:
        assert one["AmbientCapabilities"] == one["CapabilityBoundingSet"] == "CAP_NET_RAW CAP_SYSLOG"
        for key in ("After", "Wants"):
            assert {"mosquitto.service", "network-online.target"} <= set(one[key].split())


def test_every_bridge_setting_is_explained():
    """The bridge itself runs in tests/test_bridge.py; here: no line of it goes unexplained."""
    lines = (HW / "mosquitto" / "bridge.conf.example").read_text().splitlines()
    for before, line in zip(lines, lines[1:], strict=False):
        assert not line or line.startswith("#") or before.startswith("#"), f"unexplained: {line}"


def _run_install(*args, root=None):
    cmd = ["bash", str(HW / "install.sh"), *args]
    if root is not None:
        cmd += ["--root", str(root), "--no-venv", "--python", PYTHON]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
                                      stat.S_IMODE(p.stat().st_mode))
            for p in sorted(root.rglob("*"))}


def test_install_dry_run_changes_nothing(tmp_path):
    need(shutil.which("openssl") is not None, "openssl is not installed")
    out = _run_install("--dry-run", root=tmp_path)
    assert out.returncode == 0, out.stderr
    assert _snapshot(tmp_path) == {}
    assert "+ install -m 0640" in out.stdout and "mqtt.secret" in out.stdout


def test_install_into_root_and_again(tmp_path):
    need(shutil.which("openssl") is not None, "openssl is not installed")
    first = _run_install(root=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    modes = {
        "etc/antrean": 0o750, "var/lib/antrean": 0o750, "etc/antrean/kiosk.toml": 0o640,
        "etc/antrean/mqtt.secret": 0o600, "etc/udev/rules.d/60-antrean.rules": 0o644,
        "etc/systemd/system/antrean-kiosk.service": 0o644, "etc/systemd/system/antrean-agent.service": 0o644,
        "opt/antrean/bin/antrean-lobby-screen": 0o755,
    }
    for rel, mode in modes.items():
        assert stat.S_IMODE((tmp_path / rel).stat().st_mode) == mode, rel
    for unit in UNITS:
        assert (tmp_path / "etc/systemd/system" / unit).read_bytes() == (HW / "systemd" / unit).read_bytes()
    assert len((tmp_path / "etc/antrean/mqtt.secret").read_text().strip()) >= 32
    config = (tmp_path / "etc/antrean/kiosk.toml").read_text()
    assert 'staff_password_hash = "scrypt:' in config or 'staff_password_hash = "pbkdf2:' in config
    password = first.stdout.split("STAFF PASSWORD (shown only now; write it down): ")[1].split()[0]
    from werkzeug.security import check_password_hash
    hash_line = next(line for line in config.splitlines() if line.startswith("staff_password_hash"))
    assert check_password_hash(hash_line.split('"')[1], password)
    check = subprocess.run([PYTHON, "-m", "kiosk.cli", "check-config", str(tmp_path / "etc/antrean/kiosk.toml")],
                           capture_output=True, text=True, cwd=REPO, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr

    before = _snapshot(tmp_path)
    second = _run_install(root=tmp_path)
    assert second.returncode == 0, second.stderr
    assert _snapshot(tmp_path) == before  # same files, same content (secrets too), same modes
    assert "STAFF PASSWORD" not in second.stdout
    assert [line for line in second.stdout.splitlines() if line.startswith("+")] == []


def test_install_never_overwrites_an_edited_config(tmp_path):
    need(shutil.which("openssl") is not None, "openssl is not installed")
    (tmp_path / "etc/antrean").mkdir(parents=True)
    (tmp_path / "etc/antrean/kiosk.toml").write_text('id = "mine"\n')
    (tmp_path / "etc/antrean/mqtt.secret").write_text("kept\n")
    out = _run_install(root=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "etc/antrean/kiosk.toml").read_text() == 'id = "mine"\n'
    assert (tmp_path / "etc/antrean/mqtt.secret").read_text() == "kept\n"


def test_shell_scripts_are_shellcheck_clean():
    need(shutil.which("shellcheck") is not None, "shellcheck is not installed: apt-get install shellcheck")
    out = subprocess.run(["shellcheck", str(HW / "install.sh"), str(HW / "lobby-screen" / "antrean-lobby-screen")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout


def test_udev_rules_name_the_devices():
    rules = (HW / "udev" / "60-antrean.rules").read_text()
    active = [line for line in rules.splitlines() if line and not line.startswith("#")]
    assert any('SYMLINK+="antrean-printer"' in line for line in active)
    panel = [line for line in active if 'SYMLINK+="antrean-panel"' in line]
    assert panel and 'ATTRS{idVendor}=="2e8a"' in panel[0] and 'ATTRS{idProduct}=="0005"' in panel[0]
    assert all('MODE="0660"' in line for line in active if "SYMLINK" in line)
    assert "usbmisc" in rules  # the usblp example


def test_scripts_are_executable():
    for rel in ("install.sh", "lobby-screen/antrean-lobby-screen"):
        assert os.access(HW / rel, os.X_OK), rel
