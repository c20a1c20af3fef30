"""``network.json``: the agent's latest network state, handed to the lobby page through a file.

The agent calls :func:`write_network` after every probe round with the
same body it publishes as the retained MQTT ``network`` state (``started``,
``ended``, ``targets``, ``verdict``). The write is atomic (temporary file,
``os.replace``), so the lobby reads either the old body or the new, never
half of one. It is not fsynced: 8,640 rounds a day would wear the SD card,
and a file lost in a power cut is written again at the next round (until
then the page says its data is stale). The file's modification time is when the data was
current: a file older than ``stale_after_s`` means the agent stopped
writing, and the page says so.
"""

import json
import os
import tempfile

NETWORK_FILE = "network.json"


def write_network(data_dir: str, body: dict) -> str:
    """Replace ``<data_dir>/network.json`` with ``body`` atomically; return its path."""
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, NETWORK_FILE)
    fd, tmp = tempfile.mkstemp(prefix=".network.", suffix=".tmp", dir=data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f, sort_keys=True)
        os.chmod(tmp, 0o644)  # the lobby may run as another user
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_network(data_dir: str) -> tuple[dict | None, float | None, str | None]:
    """``(body, written_at, problem)``: the body and its mtime (epoch s), or None and why not."""
    path = os.path.join(data_dir, NETWORK_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            written = os.fstat(f.fileno()).st_mtime
            body = json.load(f)
    except FileNotFoundError:
        return None, None, f"{path} does not exist yet: is the edge agent running?"
    except (OSError, ValueError) as exc:
        return None, None, f"{path} cannot be read ({exc}); the agent rewrites it after its next round"
    if not isinstance(body, dict) or not isinstance(body.get("verdict"), dict):
        return None, written, f"{path} has no verdict; it is not the agent's network state"
    return body, written, None
