"""Serving the app with waitress, startable and stoppable from a thread (the tests do both).

waitress reads a whole request body into its buffers (memory, then a
temporary file past ``inbuf_overflow``) before the app sees the request,
and by default takes bodies up to 1 GB: four unauthenticated 200 MB uploads
held 839 MB. So the limits are waitress's own: a request declaring a body
over :data:`MAX_BODY_BYTES` is answered 413 and closed right after its
headers, a chunked one as soon as it passes the limit; Flask's
``MAX_CONTENT_LENGTH`` is the same limit again for any other server.
"""

import threading

from waitress.server import create_server

from lobby.app import MAX_BODY_BYTES

MAX_HEADER_BYTES = 16 * 1024  # a browser's headers with the session cookie are under 2 KB


class LobbyServer:
    """A waitress server for ``app`` on ``host:port`` (port 0: a free one, see ``.port``)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, threads: int = 4):
        self._server = create_server(app, host=host, port=port, threads=threads, ident="antrean-lobby",
                                     max_request_body_size=MAX_BODY_BYTES + 1,  # waitress refuses >= its limit
                                     max_request_header_size=MAX_HEADER_BYTES)
        self.host = host
        self.port = self._server.effective_port
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def run(self) -> None:
        """Serve until :meth:`stop` (blocks)."""
        self._server.run()

    def start(self) -> "LobbyServer":
        self._thread = threading.Thread(target=self.run, name="lobby-server", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and every open connection; the browser sees it gone at once. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        done = threading.Event()

        def close_all():
            for channel in list(self._server._map.values()):
                channel.close()
            done.set()

        self._server.trigger.pull_trigger(close_all)  # runs in the server's own loop thread
        done.wait(timeout)
        self._server.task_dispatcher.shutdown(timeout=timeout)
        if self._thread is not None:
            self._thread.join(timeout)
