"""``python -m escpos_emulator`` as a process: commands on stdin, tickets on stdout, a real pty."""

import os
import queue
import subprocess
import sys
import threading

import pytest
import serial
from test_emulator import TIMEOUT, eot, ticket


class Cli:
    """The emulator process, with its stdout read line by line on a thread."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, "-m", "escpos_emulator", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, *prefixes: str) -> list[str]:
        """Lines up to and including the first that starts with one of ``prefixes``."""
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=TIMEOUT)
            except queue.Empty:
                pytest.fail(f"no line starting with {prefixes} within {TIMEOUT} s; got {seen}")
            if line is None:
                pytest.fail(f"emulator exited ({self.proc.wait()}) before {prefixes}; got {seen}; "
                            f"stderr: {self.proc.stderr.read()}")
            seen.append(line)
            if line.startswith(prefixes):
                return seen

    def command(self, text: str) -> str:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self.expect("ok:", "error:")[-1]

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


@pytest.fixture
def cli(tmp_path):
    process = Cli("--pty", str(tmp_path / "printer"), "--baud", "115200", "--tcp", "127.0.0.1:0",
                  "--out", str(tmp_path / "out"))
    yield process
    process.close()


def test_cli_prints_tickets_and_obeys_commands(cli, tmp_path):
    link = str(tmp_path / "printer")
    assert "PtyLink(" in cli.expect("ready:")[-1]
    assert cli.command("paper out") == "ok: paper out"
    with serial.Serial(link, 115200, timeout=TIMEOUT) as port:
        port.write(eot(1) + eot(4))
        assert port.read(2) == b"\x1a\x7e"
        assert cli.command("paper   OK") == "ok: paper ok"
        port.write(ticket(12))
        shown = cli.expect("saved ")
    assert shown[0] == "document 1: complete, %d bytes" % len(ticket(12))
    assert "|      A   -   0   1   2         |" in shown
    assert sorted(os.listdir(tmp_path / "out")) == ["doc-0001.png", "doc-0001.txt"]
    assert cli.command("unplug") == "ok: unplug" and not os.path.lexists(link)
    assert cli.command("replug") == "ok: replug" and os.path.islink(link)
    assert "paper=ok" in cli.command("state")
    assert cli.command("quit") == "ok: quit"
    assert cli.proc.wait(TIMEOUT) == 0
    assert not os.path.lexists(link)


def test_cli_names_a_bad_command_and_lists_the_valid_ones(cli):
    cli.expect("ready:")
    error = cli.command("paper gone")
    assert error.startswith("error: unknown command 'paper gone'; valid: paper out|near_end|ok, cover open|close")
    assert cli.command("cover open") == "ok: cover open"


def test_cli_quits_at_end_of_input_and_removes_the_link(tmp_path):
    link = tmp_path / "printer"
    result = subprocess.run([sys.executable, "-m", "escpos_emulator", "--pty", str(link)], input="state\n",
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "ok: paper=ok" in result.stdout
    assert not os.path.lexists(link)


@pytest.mark.parametrize("args, message", [
    ([], "give --pty PATH and/or --tcp"),
    (["--tcp", "10.0.0.5:9100"], "not an IPv4 loopback address"),
    (["--tcp", "localhost"], "is not HOST:PORT"),
])
def test_cli_rejects_bad_arguments(args, message):
    result = subprocess.run([sys.executable, "-m", "escpos_emulator", *args], capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and message in result.stderr


def test_cli_shows_any_characters_and_says_when_a_document_was_not_saved(cli, tmp_path):
    link = str(tmp_path / "printer")
    cli.expect("ready:")
    (tmp_path / "out" / "doc-0002.txt").mkdir()  # in the way of the second document
    with serial.Serial(link, 115200, timeout=TIMEOUT) as port:
        port.write(b"\x1b@\x1bt\x11" + bytes(range(0x80, 0x100)) + b"\n\x1dV\x00")  # CP866: Cyrillic
        shown = cli.expect("saved ")
        assert "\u0416" in "\n".join(shown)
        port.write(ticket(12))
        cli.expect("document 2:")
        assert port.write(eot(1)) and port.read(1) == b"\x1a"  # the printer is in error now
    state = cli.command("state")
    assert "error=on" in state and "can_print=no" in state and "SAVE FAILED" in state and "doc-0002" in state
    assert cli.command("error off") == "ok: error off"
    assert "SAVE FAILED" not in cli.command("state")


def test_cli_takes_code_pages_and_width_from_a_profile(tmp_path):
    process = Cli("--pty", str(tmp_path / "printer"), "--profile", "POS-5890")
    try:
        process.expect("ready:")
        with serial.Serial(str(tmp_path / "printer"), 115200, timeout=TIMEOUT) as port:
            # POS-5890 has CP1251 at ESC t 73 (Epson numbers it 46): Cyrillic, framed 32 wide.
            port.write(b"\x1b@\x1bt\x49\xc4\xee\xea\xf3\xec\xe5\xed\xf2\n\x1dV\x00")
            shown = process.expect("+-------")
        assert "|\u0414\u043e\u043a\u0443\u043c\u0435\u043d\u0442" + " " * 24 + "|" in shown
    finally:
        process.close()


def test_cli_names_an_unknown_profile(tmp_path):
    result = subprocess.run([sys.executable, "-m", "escpos_emulator", "--pty", str(tmp_path / "p"),
                             "--profile", "TM-NOPE"], capture_output=True, text=True, timeout=TIMEOUT * 4)
    assert result.returncode == 2 and "'TM-NOPE'" in result.stderr
