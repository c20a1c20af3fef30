"""The kiosk's MQTT link: one paho client (MQTT v5), with the disk outbox as the only queue.

``event()`` and ``state()`` only write the outbox (one SQLite commit) and
nudge the sender thread; they never wait for the network. Three threads:

- paho's network thread (``loop_start``) connects, reconnects, and runs the
  callbacks. Callbacks only record what happened on a queue. While nothing
  answers at the broker's port it retries every second (a refused TCP
  connect is free), so delivery resumes as soon as the broker is back; it
  backs off only from a broker that answers and refuses (login, TLS).
- the sender thread reads the outbox oldest first and publishes at most
  ``max_in_flight`` messages at a time. A row leaves the outbox only when
  the broker's PUBACK for it arrives (paho's ``on_publish`` with its mid).
  On a disconnect the mid map is dropped and, after the reconnect, sending
  starts again from the oldest row: a message may reach a receiver twice,
  never zero times. Receivers dedupe by ``(boot_id, seq)``.
- the command thread runs command handlers (a test print can take seconds)
  so that they never stall PUBACKs and keepalives.

paho also keeps every unacknowledged QoS 1 message in memory and re-sends it
after a reconnect, even one published while disconnected (``publish`` then
returns MQTT_ERR_NO_CONN but queues the message anyway). The outbox already
re-sends those, so paho's copies would only be duplicates and, over a link
that flaps for a day, an unbounded pile of RAM: the link empties paho's
queue at every disconnect and connect (``_forget_paho_queue``).

Status: ``<base>/status`` is "online" (retained, published on connect) or
"offline" (retained, published by ``stop()``, or by the broker as the Last
Will when the kiosk vanishes). See docs/mqtt.md for every topic.
"""

import enum
import logging
import queue
import re
import socket
import threading
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge_agent import schema
from edge_agent.envelope import HISTORICAL_PROPERTY, Envelope, encode, mark_historical
from edge_agent.errors import AgentConfigError
from edge_agent.schema import LinkStatus, OutboxKind

log = logging.getLogger("edge_agent.mqtt")

HA_STATUS_TOPIC = "homeassistant/status"
ONLINE, OFFLINE = LinkStatus.ONLINE.value, LinkStatus.OFFLINE.value
# Topic levels under <base> that state() must not use: the link and technicians own them.
RESERVED_NAMES = frozenset({"status", "cmd", "events", "reply"})
COMMAND_QUEUE = 16
# While nothing answers at the broker's port, a reconnect attempt costs one refused TCP connect: try
# this often, so delivery resumes within about a second of the broker coming back. The back-off
# (reconnect_min_s..reconnect_max_s) is for a broker that answers and refuses (login, TLS).
RECONNECT_PROBE_S = 1.0
PORT_PROBE_TIMEOUT_S = 2.0
# Bytes of a PUBLISH besides topic and payload (headers, packet id, our properties), with room to spare.
PACKET_OVERHEAD = 128
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_BASE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
_REFUSAL_FIX = {
    134: "check [mqtt] username and password against the broker's password_file (mosquitto_passwd)",
    # Mosquitto 2.0 answers a wrong password with 135 too.
    135: "check [mqtt] username and password against the broker's password_file; see hardware/mosquitto/README.md",
    133: "the broker refused the client id (the agent sends its username); check clientid_prefixes in its config",
}
RETAINED_FIX = ("it was published retained, so the broker (or a bridge at every reconnect) would replay it; "
                "clear it with mosquitto_pub -r -n -t {topic} and send requests without -r")


class Failure(enum.StrEnum):
    """Why connects fail, for logging once per streak instead of at every retry."""

    REFUSED = "refused"  # the broker answers and refuses (login)
    HANDSHAKE = "handshake"  # TCP works, TLS or the MQTT handshake does not
    UNREACHABLE = "unreachable"  # nothing answers at the port


@dataclass(frozen=True)
class Tls:
    """Files for TLS to the broker. ``certfile``/``keyfile`` only for client-certificate login."""

    ca_file: str
    certfile: str | None = None
    keyfile: str | None = None


@dataclass(frozen=True)
class _Command:
    verb: str
    payload: bytes
    response_topic: str
    correlation: bytes | None


class MqttLink:
    def __init__(self, *, host: str, port: int, client_id: str, username: str | None, password: str | None,
                 tls: Tls | None, keepalive_s: int, topic_base: str, outbox, dispatcher, kiosk_id: str,
                 office_id: str, discovery=None, clock=None, boot_id: str | None = None, max_in_flight: int = 20,
                 reconnect_min_s: float = 1.0, reconnect_max_s: float = 60.0):
        if not _BASE.match(topic_base or ""):
            raise ValueError(f"topic_base {topic_base!r} must be levels of A-Z a-z 0-9 _ - joined by '/', "
                             "e.g. antrean/serang-kota/kiosk-1")
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ValueError(f"max_in_flight {max_in_flight!r} must be a positive int")
        self.topic_base = topic_base
        self.status_topic = f"{topic_base}/status"
        self._cmd_prefix = f"{topic_base}/cmd/"
        self._reply_prefix = f"{topic_base}/reply/"
        self._host, self._port, self._keepalive = host, port, keepalive_s
        self._outbox = outbox
        self._dispatcher = dispatcher
        self._discovery = discovery
        self._envelope = Envelope(kiosk_id, office_id, clock, boot_id)
        self._max_in_flight = max_in_flight
        self._backoff = (reconnect_min_s, reconnect_max_s)
        self._probing = False  # paho retries every RECONNECT_PROBE_S instead of backing off
        self._client = self._make_client(client_id, username, password, tls, reconnect_min_s, reconnect_max_s)
        # Written by paho's thread, read anywhere.
        self._connected = threading.Event()
        self._subscribed = threading.Event()  # commands can reach us: set at the SUBACK
        self._subscribe_mid: int | None = None
        # "<boot_id>/<n>" while connection n is up. Before the first connect it is "<boot_id>/0": what is
        # made then is not "historical" if that first connect comes without a failure.
        self._session: str | None = f"{self.boot_id}/0"
        self._connects = 0
        self._connect_failures = 0
        self._max_packet: int | None = None  # the broker's Maximum Packet Size, from its CONNACK
        self._failure: Failure | None = None  # kind of the current streak of failed connects
        self.last_error: str | None = None
        # What callbacks report to the sender thread, in the order it happened.
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._put_lock = threading.Lock()
        # Owned by the sender thread.
        self._in_flight: dict[int, tuple[int, str]] = {}  # mid -> (outbox id, topic)
        self._cursor = 0  # last outbox id sent on this connection
        self._sending_session: str | None = None
        self._same_run: frozenset = frozenset()  # sessions whose messages did not wait (see _session)
        self._sent = self._acked = self._refused = 0
        self._commands: queue.Queue = queue.Queue(COMMAND_QUEUE)
        self._sender = threading.Thread(target=self._run_sender, name="mqtt-sender", daemon=True)
        self._worker = threading.Thread(target=self._run_commands, name="mqtt-commands", daemon=True)
        self._stopping = threading.Event()
        self._started = False

    # ------------------------------------------------------------ setup

    def _make_client(self, client_id, username, password, tls, min_s, max_s) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        _require_paho_internals(client)
        if username is not None:
            client.username_pw_set(username, password)
        if tls is not None:
            try:
                client.tls_set(ca_certs=tls.ca_file, certfile=tls.certfile, keyfile=tls.keyfile)
            except (OSError, ValueError) as exc:
                raise AgentConfigError([f"mqtt tls: cannot load ca_file {tls.ca_file!r}, certfile {tls.certfile!r}, "
                                        f"keyfile {tls.keyfile!r}: {exc}; check the paths and that they are "
                                        "PEM files readable by the agent"]) from None
        client.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_s, max_s)
        # Room beside the outbox window for the status, the discovery message and command answers.
        client.max_inflight_messages_set(self._max_in_flight + COMMAND_QUEUE + 4)
        paho_log = logging.getLogger("edge_agent.mqtt.paho")
        if paho_log.isEnabledFor(logging.DEBUG):
            # Only when debugging: paho logs every failed reconnect attempt at ERROR level.
            client.enable_logger(paho_log)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect in the background and keep reconnecting; returns at once."""
        if self._started:
            raise RuntimeError("MqttLink.start() was called twice; make a new MqttLink instead")
        self._started = True
        self._sender.start()
        self._worker.start()
        # clean_start=True: commands sent while the kiosk was away are not run late (nobody waits for them).
        self._client.connect_async(self._host, self._port, self._keepalive, clean_start=True)
        self._client.loop_start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish "offline", disconnect cleanly (so the broker discards the Will), stop the threads.

        Acks that arrived before the disconnect are written to the outbox
        first, so what the broker has is not sent again after a restart.
        """
        if not self._started or self._stopping.is_set():
            return
        self._stopping.set()
        if self._connected.is_set():
            info = self._client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                pass  # the connection went meanwhile: the broker publishes the Will instead
        self._client.disconnect()
        self._client.loop_stop()
        self._commands.put(None)
        self._worker.join(timeout_s)
        self._wake.set()
        self._sender.join(timeout_s)

    # ------------------------------------------------------------ the agent's API

    def event(self, kind: str, body) -> int | None:
        """Queue an event for ``<base>/events/<kind>`` (QoS 1, not retained, never dropped).

        ``body`` is an edge_agent.schema event of that kind (a dict only from tools and tests)."""
        _check_name(kind, "event kind")
        _check_topic(body, "KIND", kind)
        return self._put(f"{self.topic_base}/events/{kind}", body, retain=False, kind=OutboxKind.EVENT)

    def state(self, name: str, body, change: bool) -> int | None:
        """Queue a state for ``<base>/<name>`` (QoS 1, retained): an edge_agent.schema state body.

        ``change=True`` for a state change (never dropped), False for a
        periodic sample (the oldest samples are dropped when the outbox is
        full). Returns the outbox id, or None if the sample was dropped at once.
        """
        _check_name(name, "state name")
        if name in RESERVED_NAMES:
            raise ValueError(f"state name {name!r} is reserved ({', '.join(sorted(RESERVED_NAMES))}); "
                             "choose another")
        if not isinstance(change, bool):
            raise TypeError(f"change must be True or False, got {change!r}")
        _check_topic(body, "TOPIC", name)
        kind = OutboxKind.CHANGE if change else OutboxKind.SAMPLE
        return self._put(f"{self.topic_base}/{name}", body, retain=True, kind=kind)

    def _put(self, topic: str, body, *, retain: bool, kind: OutboxKind) -> int | None:
        # One lock around seq and insert: outbox order is seq order, so receivers see seqs rise.
        with self._put_lock:
            message = self._envelope.wrap(body)
            row_id = self._outbox.put(topic, message, qos=1, retain=retain, kind=kind, session=self._session)
        self._wake.set()
        return row_id

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float | None = None) -> bool:
        """Wait until connected *and* subscribed to the commands (so a command sent now is received)."""
        return self._subscribed.wait(timeout_s)

    @property
    def boot_id(self) -> str:
        return self._envelope.boot_id

    @property
    def stats(self) -> dict:
        return {"connected": self.connected, "sent": self._sent, "acked": self._acked, "refused": self._refused,
                "in_flight": len(self._in_flight), "pending": self._outbox.count(), "dropped": self._outbox.dropped,
                "outbox_bytes": self._outbox.bytes(), "over_budget": self._outbox.over_budget,
                "reconnects": max(self._connects - 1, 0), "connect_failures": self._connect_failures,
                "last_error": self.last_error}

    # ------------------------------------------------------------ paho callbacks (paho's thread)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            fix = _REFUSAL_FIX.get(reason_code.value, "see the broker's log")
            self.last_error = f"broker {self._host}:{self._port} refused the connection: {reason_code}; {fix}"
            self._session = None
            self._connect_failures += 1
            self._set_probing(False)  # it answers and refuses: asking every second would only fill its log
            self._report_failure(Failure.REFUSED, logging.ERROR, "mqtt connection refused",
                                 {"reason": str(reason_code), "fix": fix})
            return
        self._forget_paho_queue()
        starting = self._session == f"{self.boot_id}/0"  # the first connect, no failure before it
        # A broker disconnects a client that sends a packet over its max_packet_size: such a message
        # would cut the connection at every try and block the outbox, so the sender refuses it itself.
        self._max_packet = getattr(properties, "MaximumPacketSize", None)
        self._connects += 1
        self._session = f"{self.boot_id}/{self._connects}"
        self._failure = None
        self.last_error = None
        client.publish(self.status_topic, ONLINE, qos=1, retain=True)
        # Retained messages are not replayed on subscribe, and a retained command published while we
        # are subscribed (or replayed by a bridge at its reconnect) keeps its retain flag
        # (retain-as-published), so _accept_command can refuse it: it would run at every reconnect.
        commands = SubscribeOptions(qos=1, retainAsPublished=True,
                                    retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
        no_retained = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
        _, self._subscribe_mid = client.subscribe([(self._cmd_prefix + "+", commands),
                                                   (HA_STATUS_TOPIC, no_retained)])
        self._publish_discovery()
        self._connected.set()
        self._events.put(("up", self._session, frozenset({f"{self.boot_id}/0"} if starting else ())))
        self._wake.set()
        log.info("mqtt connected", extra={"broker": f"{self._host}:{self._port}", "reconnects": self._connects - 1})

    def _on_connect_fail(self, client, userdata) -> None:
        self._session = None
        self._connect_failures += 1
        if self._port_answers():  # TCP works, so TLS or the MQTT handshake failed: back off
            self._set_probing(False)
            self.last_error = (f"the broker at {self._host}:{self._port} answers but the connection failed "
                               "(TLS or MQTT handshake); check [mqtt] tls, ca_file and port; messages wait in "
                               "the outbox")
            self._report_failure(Failure.HANDSHAKE, logging.WARNING, "mqtt handshake failed",
                                 {"broker": f"{self._host}:{self._port}"})
            return
        self._set_probing(True)
        self.last_error = f"cannot reach the broker at {self._host}:{self._port}; messages wait in the outbox"
        self._report_failure(Failure.UNREACHABLE, logging.WARNING, "mqtt broker unreachable",
                             {"broker": f"{self._host}:{self._port}"})

    def _port_answers(self) -> bool:
        """One plain TCP connect to the broker's port (no TLS, no MQTT): is anything listening?"""
        try:
            socket.create_connection((self._host, self._port), timeout=PORT_PROBE_TIMEOUT_S).close()
            return True
        except OSError:
            return False

    def _set_probing(self, probing: bool) -> None:
        """Retry every RECONNECT_PROBE_S, or back off from reconnect_min_s (paho restarts its back-off)."""
        if probing == self._probing:
            return  # unchanged: let paho's back-off keep growing
        self._probing = probing
        low, high = (RECONNECT_PROBE_S, RECONNECT_PROBE_S) if probing else self._backoff
        self._client.reconnect_delay_set(low, high)

    def _report_failure(self, kind: Failure, level: int, message: str, extra: dict) -> None:
        # Log when the kind of failure changes, not at every retry of the back-off.
        log.log(level if kind != self._failure else logging.DEBUG, message, extra=extra)
        self._failure = kind

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_up = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        self._session = None
        if was_up:
            self._set_probing(True)  # a broker restart: be back within a second of it
        self._forget_paho_queue()
        self._events.put(("down",))
        self._wake.set()
        if was_up and not self._stopping.is_set():
            self.last_error = f"connection to {self._host}:{self._port} lost: {reason_code}"
            log.warning("mqtt disconnected", extra={"reason": str(reason_code)})

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if mid != self._subscribe_mid:
            return
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            self.last_error = (f"broker refused the subscription to {self._cmd_prefix}+ or {HA_STATUS_TOPIC}: "
                               f"{refused}; check this kiosk's read lines in the broker's acl_file")
            log.error("mqtt subscription refused", extra={"reasons": refused})
            return
        self._subscribed.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # paho holds its message lock here: only hand over, never take one of ours.
        self._events.put(("ack", mid, reason_code))
        self._wake.set()

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == HA_STATUS_TOPIC:
            if message.payload == b"online":
                self._publish_discovery()  # Home Assistant (re)started and may have lost retained configs
        elif message.topic.startswith(self._cmd_prefix):
            self._accept_command(message)

    def _forget_paho_queue(self) -> None:
        """Empty paho's queue of unacknowledged messages; the outbox re-sends what matters.

        paho has no public call for this. ``_require_paho_internals`` checks
        at start-up that the attributes still exist, and tests/test_mqtt.py
        fails if a reconnect re-sends paho's copies again.
        """
        client = self._client
        with client._out_message_mutex:
            client._out_messages.clear()
            client._inflight_messages = 0

    def _publish_discovery(self) -> None:
        if self._discovery is not None:
            self._client.publish(self._discovery.topic, self._discovery.config().to_json(), qos=1, retain=True)

    # ------------------------------------------------------------ sender thread

    def _run_sender(self) -> None:
        retry_s = None
        while True:
            self._wake.wait(retry_s)
            self._wake.clear()
            try:
                self._apply_events()
                if self._stopping.is_set() and not self._client.is_connected():
                    return
                self._send_more()
                retry_s = None
            except Exception:
                # A full or broken disk must not kill the thread: try again shortly.
                log.exception("mqtt sender failed; retrying in 5 s")
                retry_s = 5.0

    def _apply_events(self) -> None:
        acked, refused = [], 0
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if event[0] == "ack":
                refused += self._on_ack(event[1], event[2], acked)
            else:  # "up" or "down": either way the old mids mean nothing any more
                self._in_flight.clear()
                self._cursor = 0
                self._sending_session = event[1] if event[0] == "up" else None
                self._same_run = event[2] if event[0] == "up" else frozenset()
        if acked:
            self._outbox.ack_many(acked)
            # Counted after the delete, so stats never show an acked message as still pending.
            self._acked += len(acked) - refused
            self._refused += refused

    def _on_ack(self, mid: int, reason_code, acked: list) -> bool:
        """Note the row to delete; True if the broker refused it."""
        entry = self._in_flight.pop(mid, None)
        if entry is None:
            return False  # the status, the discovery message or a command answer
        row_id, topic = entry
        acked.append(row_id)
        if reason_code.is_failure:
            # The broker will refuse it again (an ACL, a size limit): keeping it would block the queue forever.
            fix = "check this kiosk's lines in the broker's acl_file and its max_packet_size"
            self.last_error = f"broker refused a message on {topic}: {reason_code}; {fix}"
            log.error("broker refused a message; it is removed from the outbox",
                      extra={"topic": topic, "reason": str(reason_code), "fix": fix})
        return reason_code.is_failure

    def _send_more(self) -> None:
        if self._sending_session is None or self._stopping.is_set():
            return  # nothing goes out after "offline": what is left waits for the next start
        room = self._max_in_flight - len(self._in_flight)
        if room <= 0:
            return
        for item in self._outbox.pending(room, after=self._cursor):
            if self._session != self._sending_session:
                return  # the connection changed under us: "down"/"up" are queued, sending restarts from the oldest
            payload, props = self._message(item)
            if self._too_large(item, payload):
                self._cursor = item.id
                continue
            info = self._client.publish(item.topic, payload, qos=item.qos, retain=item.retain, properties=props)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return  # the connection just went; "down" follows and the outbox keeps the row
            self._in_flight[info.mid] = (item.id, item.topic)
            self._cursor = item.id
            self._sent += 1

    def _message(self, item) -> tuple[bytes, Properties]:
        props = _json_properties()
        body = item.body
        if item.session != self._sending_session and item.session not in self._same_run:  # it waited
            body = mark_historical(body)
            props.UserProperty = [HISTORICAL_PROPERTY]
        return encode(body), props

    def _too_large(self, item, payload: bytes) -> bool:
        """Refuse (and drop from the outbox) a message over the broker's Maximum Packet Size."""
        size = len(item.topic.encode("utf-8")) + len(payload) + PACKET_OVERHEAD
        if self._max_packet is None or size <= self._max_packet:
            return False
        self._outbox.ack(item.id)
        self._refused += 1
        self.last_error = (f"a {size}-byte message on {item.topic} is over the broker's max_packet_size "
                           f"{self._max_packet}; it is removed from the outbox. Raise max_packet_size in "
                           "mosquitto.conf, or send less in one message")
        log.error("message too large for the broker; removed from the outbox",
                  extra={"topic": item.topic, "bytes": size, "max_packet_size": self._max_packet})
        return True

    # ------------------------------------------------------------ commands

    def _accept_command(self, message) -> None:
        verb = message.topic[len(self._cmd_prefix):]
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None)
        if not response_topic or not response_topic.startswith(self._reply_prefix):
            # Nobody could hear the answer, so the command is not run at all (docs/mqtt.md).
            log.warning("command refused: no ResponseTopic under the kiosk's reply/ topic",
                        extra={"verb": verb, "response_topic": response_topic,
                               "fix": f"send an MQTT v5 request with ResponseTopic {self._reply_prefix}<your-id>"})
            return
        command = _Command(verb, bytes(message.payload), response_topic, getattr(props, "CorrelationData", None))
        if message.retain:
            log.warning("command refused: it was published retained", extra={"verb": verb, "topic": message.topic})
            self._answer(command, _refusal(verb, "retained",
                                           f"{verb} was not run: " + RETAINED_FIX.format(topic=message.topic)))
            return
        try:
            self._commands.put_nowait(command)
        except queue.Full:
            self._answer(command, _refusal(verb, "busy", f"{COMMAND_QUEUE} commands are already waiting; "
                                                         "ask again in a minute"))

    def _run_commands(self) -> None:
        while (command := self._commands.get()) is not None:
            try:
                self._answer(command, schema.Reply.from_dict(self._dispatcher.handle(command.verb, command.payload)))
            except Exception:
                log.exception("command answer failed", extra={"verb": command.verb})

    def _answer(self, command: _Command, answer: schema.Reply) -> None:
        # Answers skip the outbox: one that waited for a reconnect would reach a technician who gave up.
        props = _json_properties()
        if command.correlation is not None:
            props.CorrelationData = command.correlation
        info = self._client.publish(command.response_topic, encode(self._envelope.wrap(answer)), qos=1,
                                    retain=False, properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("command answer lost with the connection", extra={"verb": command.verb})


def _refusal(verb: str, code: str, message: str) -> schema.Reply:
    return schema.Reply(ok=False, verb=verb, error=schema.ReplyError(code, message))


def _check_topic(body, attribute: str, name: str) -> None:
    """A schema body goes only to its own topic: the parser reads it back by the topic."""
    expected = getattr(type(body), attribute, None)
    if expected is not None and expected != name:
        raise ValueError(f"{type(body).__name__} bodies go to {expected!r}, not {name!r}")


def _json_properties() -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.PayloadFormatIndicator = 1  # UTF-8 text
    props.ContentType = "application/json"
    return props


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what} {name!r} must be 1 to 64 of a-z 0-9 _ starting with a letter, e.g. outage_started")


def _require_paho_internals(client: mqtt.Client) -> None:
    missing = [name for name in ("_out_message_mutex", "_out_messages", "_inflight_messages")
               if not hasattr(client, name)]
    if missing:
        raise RuntimeError(f"paho-mqtt {getattr(mqtt, '__version__', '?')} lacks {missing}, which the link uses "
                           "to drop paho's in-memory re-sends; pin paho-mqtt to 2.1/2.2 or update "
                           "MqttLink._forget_paho_queue")
