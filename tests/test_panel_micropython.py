"""The button panel firmware on a real MicroPython, and type-checked against MicroPython's stubs.

The MicroPython is the WebAssembly port from npm
(@micropython/micropython-webassembly-pyscript, pinned in tests/micropython/package.json),
installed into tests/micropython/node_modules on first run from the npm registry.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import need

ROOT = Path(__file__).resolve().parents[1]
MP_DIR = ROOT / "tests" / "micropython"
FIRMWARE = ROOT / "hardware" / "button_panel"
PACKAGE = "@micropython/micropython-webassembly-pyscript"
STUBS = ("micropython-rp2-rpi_pico-stubs", "micropython-stdlib-stubs")


def _npm_ready() -> None:
    need(shutil.which("node") is not None and shutil.which("npm") is not None,
         "node and npm are not installed (apt-get install nodejs npm)")
    if (MP_DIR / "node_modules" / PACKAGE / "micropython.mjs").exists():
        return
    command = ["npm", "ci" if (MP_DIR / "package-lock.json").exists() else "install",
               "--no-audit", "--no-fund", "--loglevel=error"]
    done = subprocess.run(command, cwd=MP_DIR, capture_output=True, text=True, timeout=300)
    need(done.returncode == 0, f"{' '.join(command)} failed in {MP_DIR}: {done.stderr.strip()[-500:]}")


def test_firmware_logic_passes_on_real_micropython():
    _npm_ready()
    done = subprocess.run(["node", "runner.mjs"], cwd=MP_DIR, capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert not [line for line in lines if line.startswith("FAIL")]
    passed = [line for line in lines if line.startswith("PASS")]
    assert "PASS runs on MicroPython" in passed
    assert len(passed) >= 7, lines


def test_runner_reports_a_failing_micropython_check(tmp_path):
    """The runner must not hide failures: a script with a FAIL line exits 1."""
    _npm_ready()
    script = tmp_path / "fails.py"
    script.write_text("print('PASS fine')\nprint('FAIL on purpose')\n")
    done = subprocess.run(["node", "runner.mjs", str(script)], cwd=MP_DIR, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert "SUMMARY pass=1 fail=1" in done.stdout


def _stub_dirs(tmp_path: Path):
    """Return (typeshed_dir, board_stub_dir) or skip. The board stubs are top-level .pyi
    files in site-packages, which mypy will not search, so they are copied aside."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        import mypy  # noqa: F401
        dists = [distribution(name) for name in STUBS]
    except (ImportError, PackageNotFoundError) as exc:
        need(False, f"mypy or MicroPython stubs missing ({exc}); "
                    "pip install mypy micropython-rp2-rpi_pico-stubs micropython-stdlib-stubs")
    board, stdlib = dists
    typeshed = Path(str(stdlib.locate_file("")))
    need((typeshed / "stdlib" / "VERSIONS").exists(), "micropython-stdlib-stubs has no stdlib/VERSIONS")
    typings = tmp_path / "typings"
    shed = [f for f in stdlib.files or () if f.parts[0] == "_mpy_shed"]  # helpers the board stubs import
    for entry in list(board.files or ()) + shed:
        if entry.suffix == ".pyi":
            target = typings / entry
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(entry.locate(), target)
    return typeshed, typings


def test_firmware_type_checks_against_micropython_stubs(tmp_path):
    typeshed, typings = _stub_dirs(tmp_path)
    env = {**os.environ, "MYPYPATH": os.pathsep.join([str(FIRMWARE.parent), str(typings)])}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(FIRMWARE / "mypy.ini"),
         "--custom-typeshed-dir", str(typeshed), "--cache-dir", str(tmp_path / "cache"), str(FIRMWARE)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    ours = [line for line in done.stdout.splitlines() if line.startswith("hardware/button_panel/")]
    assert not ours, done.stdout
    assert "Success" in done.stdout or "Found" in done.stdout, done.stdout + done.stderr


def test_type_check_catches_cpython_only_calls(tmp_path):
    """The stubs really are MicroPython's: time.monotonic (CPython only) is an error."""
    typeshed, typings = _stub_dirs(tmp_path)
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nimport machine\nx = time.ticks_ms()\ny = time.monotonic()\n"
                   "machine.Pin(2, machine.Pin.IN, machine.Pin.PULL_UP)\n")
    env = {**os.environ, "MYPYPATH": str(typings)}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--custom-typeshed-dir", str(typeshed), "--cache-dir",
         str(tmp_path / "cache"), "--no-site-packages", str(bad)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("bad.py:")]
    assert len(errors) == 1 and "monotonic" in errors[0], done.stdout


@pytest.mark.parametrize("name", ["protocol.py", "debounce.py", "leds.py", "panel.py", "main.py"])
def test_firmware_avoids_cpython_only_syntax(name):
    import ast

    tree = ast.parse((FIRMWARE / name).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"typing", "dataclasses", "enum", "abc"}, f"{name} imports {imported}"
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.Attribute) and node.attr == "monotonic"), f"{name} uses time.monotonic"
        if isinstance(node, ast.JoinedStr):  # f"{x=}" becomes a constant ending in "=" before the value
            texts = [part.value for part in node.values if isinstance(part, ast.Constant)]
            assert not any(t.endswith("=") for t in texts), f"{name}: f-string with '=' (line {node.lineno})"
