"""A TCP forwarder on loopback that a test or a benchmark puts between a client and its server.

``hold()`` stops client-to-server traffic (what the client sends then never arrives), ``cut()``
drops every connection, like a network that hangs and then fails; new connections after a cut
flow normally. A subclass sees every connection and every chunk it forwards (``connected``,
``forwarded``): the agent benchmark counts MQTT packets that way.
"""

import socket
import threading
import time

UPSTREAM, DOWNSTREAM = "client->server", "server->client"


class Connection:
    """One client connection and the proxy's connection to the server for it."""

    def __init__(self, number: int, client: socket.socket, upstream: socket.socket):
        self.number, self.client, self.upstream = number, client, upstream
        self.cut = False

    def shutdown(self) -> None:
        """Both ends hear the connection end; the sockets stay open for their counters (TCP_INFO)."""
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.cut = True
        self.shutdown()
        self.client.close()
        self.upstream.close()


class FaultProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self._target = (host, target_port)
        self._listener = socket.create_server((host, 0))
        self.port = self._listener.getsockname()[1]
        self.connections: list[Connection] = []  # every connection made, newest last
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def connected(self, connection: Connection) -> None:
        """Called once for each new connection, before any byte of it is forwarded."""

    def forwarded(self, connection: Connection, direction: str, data: bytes, at: float) -> None:
        """Called after each chunk is passed on; ``at`` is time.monotonic() when it was read."""

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self._target)
            except OSError:
                return
            with self._lock:
                connection = Connection(len(self.connections) + 1, client, upstream)
                self.connections.append(connection)
            self.connected(connection)
            for src, dst, direction in ((client, upstream, UPSTREAM), (upstream, client, DOWNSTREAM)):
                threading.Thread(target=self._pump, args=(connection, src, dst, direction), daemon=True).start()

    def _pump(self, connection, src, dst, direction):
        try:
            while data := src.recv(65536):
                at = time.monotonic()
                if direction == UPSTREAM:
                    self._flowing.wait()
                if connection.cut:
                    return
                dst.sendall(data)
                self.forwarded(connection, direction, data, at)
        except OSError:
            pass
        finally:
            connection.shutdown()

    def hold(self) -> None:
        self._flowing.clear()

    def cut(self) -> None:
        with self._lock:
            live = [c for c in self.connections if not c.cut]
        for connection in live:
            connection.close()
        self._flowing.set()

    def close(self) -> None:
        self._listener.close()
        self.cut()
