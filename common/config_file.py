"""Reading the config file: one way for the kiosk, the agent and the lobby page.

Only a regular file is read (a FIFO would wait for a writer, /dev/zero never
ends), at most MAX_FILE_BYTES of it, as UTF-8; tomllib's errors, deep nesting
included, come back as a ConfigError that names the file and the fix.
"""

import os
import stat
import tomllib

from common.errors import ConfigError

# The example file is under 20 kB; a file a hundred times that is not a config file.
MAX_FILE_BYTES = 2_000_000


def read_file(path: str) -> dict:
    """The one way a config file is read, by the kiosk, the agent and the lobby page."""
    return parse_toml(_file_text(path), path)


def _file_text(path: str) -> str:
    """A regular file of at most MAX_FILE_BYTES, as UTF-8; anything else is a ConfigError."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        kind = _not_regular(os.fstat(fd).st_mode)
        if kind:
            os.close(fd)
            raise ConfigError([f"{path}: is {kind}, not a config file; give the path of the TOML file, "
                               "e.g. /etc/antrean/kiosk.toml"])
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file ({exc.strerror}); "
                           "check the path given to --config"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError([f"{path}: is larger than {MAX_FILE_BYTES} bytes, too large for a config file; "
                           "give the path of the TOML file (hardware/kiosk.example.toml is under 20 kB)"])
    try:
        return data.decode("utf-8-sig")  # a BOM, as some Windows editors write, is no fault
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError([f"{path}: byte 0x{data[exc.start]:02x} at line {line} is not UTF-8; save the file "
                           "as UTF-8 (e.g. iconv -f latin1 -t utf-8 old.toml > kiosk.toml)"]) from None


def _not_regular(mode: int) -> str:
    """What a path is when it is not a regular file ('' when it is)."""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "")):
        if test(mode):
            return kind
    return "not a regular file"


def parse_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML ({exc}); fix the syntax at that line"]) from None
    except RecursionError:  # tomllib recurses once per level of nested arrays or inline tables
        raise ConfigError([f"{source}: arrays or tables nested too deeply to read; "
                           "a config file nests at most two levels, fix the brackets"]) from None
