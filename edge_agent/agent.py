"""The agent: network rounds, device health and kiosk events, published through the disk outbox.

One loop thread does the periodic work; paho's threads and the command
thread live in edge_agent/mqtt.py. Publishing only writes the outbox, so a
missing broker never slows a probe, and nothing here touches the kiosk but
read-only ledger queries and what technicians may ask (a quota, a test
print, a clock confirmation), ordinary SQLite transactions the kiosk tolerates.
"""

import datetime as dt
import logging
import os
import threading
import time

from common.sdnotify import Notifier
from edge_agent import ha_components
from edge_agent import health as device_health
from edge_agent.boots import BootLog
from edge_agent.config import AgentConfig, mqtt_password
from edge_agent.handlers import Handlers
from edge_agent.health_kiosk import KioskWatch
from edge_agent.kiosk_events import KioskFollower, relay_kind
from edge_agent.network import DOWN, NetworkMonitor, Policy, iso
from edge_agent.outages import OutageLog
from edge_agent.probes import Target
from edge_agent.store import AgentStore
from kiosk.seam import Config
from lobby import state as lobby_state

log = logging.getLogger("edge_agent")
EVENT_POLL_S = 1.0  # how soon a kiosk fault is relayed
MIN_CHANGE_GAP_S = 10.0  # a flapping under-voltage flag must not flood the uplink
FLAP_INTERVAL_S = 60.0  # a kiosk in a crash loop: at most one kiosk_process event per this, with counts


class Agent:
    def __init__(self, kiosk: Config, config: AgentConfig, *, clock=time.time, probe=None, link=None,
                 monotonic=None):
        self.kiosk, self.config, self.clock = kiosk, config, clock
        os.makedirs(config.data_dir, exist_ok=True)
        self.store = AgentStore(config.data_dir)
        self.boots = BootLog(config.data_dir)
        self.outages = OutageLog(os.path.join(config.data_dir, "outages.sqlite3"))
        self.monitor = build_monitor(kiosk, config, clock, probe)
        self.follower = KioskFollower(kiosk, self.store)
        self.kiosk_watch = KioskWatch(kiosk)
        self._monotonic = monotonic or _monotonic  # for the gaps between changes and events
        self.process_reports = ProcessReports(monotonic=self._monotonic)
        self.link = link if link is not None else build_link(kiosk, config, Handlers(self).table(), clock)
        self.stopping = threading.Event()
        self._resend = threading.Event()
        self._last = {}  # name -> (body, time published)
        self._changed_at = {}  # name -> when a change of it last went out
        self._change_owed = set()  # names with a change held back by its min_gap_s
        self._announcement_problems: set[str] = set()  # what was said about the stored announcement

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), self.kiosk.tz)

    # ------------------------------------------------------------ the loop

    def run(self) -> None:
        start = self.boots.start()
        if self.link is not None:
            self.link.start()
        if start.unclean_event:
            self.event("unclean_boot", {"previous_boot_id": start.previous_boot_id, "reason": start.reason})
        if not self.expire_announcement():
            self.publish_announcement()
        # The kiosk's first look comes before the first probe round, which may take seconds: health
        # read meanwhile says "running", so a kiosk that dies then must be said to have been running.
        self.watch_kiosk()
        due = dict.fromkeys(("network", "health", "events"), 0.0)
        notifier = Notifier()
        notifier.ready()
        try:
            while not self.stopping.is_set():
                notifier.alive()  # from the loop itself: a hung probe stops the pings
                self._run_due(due)
                self.stopping.wait(max(0.05, min(due.values()) - time.monotonic()))
        finally:
            notifier.stopping()
            self.close()

    def _run_due(self, due: dict) -> None:
        now = time.monotonic()
        resend = self._resend.is_set()
        self._resend.clear()
        if now >= due["network"] or resend:
            delay = self.network_round(force=resend)
            due["network"] = time.monotonic() + delay  # next_delay() is counted from the round's end
        if now >= due["health"] or resend:
            self.health(force=resend)
            due["health"] = now + self.config.agent["health_interval_s"]
        if now >= due["events"]:
            self.relay_kiosk_events()
            self.expire_announcement()
            self.watch_kiosk()
            due["events"] = now + EVENT_POLL_S

    def stop(self) -> None:
        self.stopping.set()

    def close(self) -> None:
        self.boots.mark_clean_shutdown()
        if self.link is not None:
            self.link.stop()
        for closable in (self.follower, self.outages, self.boots, self.store):
            closable.close()

    # ------------------------------------------------------------ the work

    def network_round(self, force: bool = False) -> float:
        """One round of probes; returns the seconds until the next round is due."""
        report = self.monitor.run_round()
        starts = self.outages.record_round(report)
        body = report.to_dict()
        lobby_state.write_network(self.config.data_dir, body)  # every round: its age is "stale"
        for transition in report.transitions:
            self._outage_event(transition, report.verdict, starts)
        self.publish_state("network", body, change=bool(report.transitions) or force)
        return self.monitor.next_delay()

    def health(self, force: bool = False) -> dict:
        body = device_health.collect_health(self.kiosk, boots=self.boots, kiosk_watch=self.kiosk_watch)
        previous = self._last.get("health", (None, 0.0))[0]
        self.publish_state("health", body, change=force or device_health.health_changed(previous, body),
                           min_gap_s=MIN_CHANGE_GAP_S)
        return body

    def relay_kiosk_events(self) -> int:
        events = self.follower.new_events()
        for event in events:
            relayed = relay_kind(event)
            if relayed is not None:
                self.event(*relayed)
            self.kiosk_watch.note(event)
        if events:  # a crash before this re-relays the batch; receivers dedupe by kiosk_event_id
            self.follower.done(events[-1].id)
        return len(events)

    def watch_kiosk(self) -> None:
        """Whether the kiosk process runs, each second: a change is an event, and health goes out now
        (also after a printer fault, however short; a change held back by its gap goes out when it ends).

        A change the crash-loop debounce holds back does not force health out either: health, also
        never dropped, says it at its next reading (health_interval_s), like the summary event."""
        change = self.kiosk_watch.poll()
        report = self.process_reports.offer(change)
        if report is not None:
            self.event("kiosk_process", report)
        held = change is not None and report is None
        owed = "health" in self._change_owed and \
            self._monotonic() - self._changed_at.get("health", float("-inf")) >= MIN_CHANGE_GAP_S
        if (self.kiosk_watch.take_news() and not held) or report is not None or owed:
            self.health()

    def set_maintenance(self, names, until: float | None, why: str) -> None:
        """Targets into (``until`` given) or out of maintenance; a down target's outage ends and
        is said like any other, so the log and the MQTT events tell the same story."""
        transitions = self.monitor.set_maintenance(names, until, why)
        starts = self.outages.record(transitions)
        verdict = self.monitor.verdict()
        for transition in transitions:
            self._outage_event(transition, verdict, starts)
        self.request_resend()

    def expire_announcement(self) -> bool:
        """Remove an announcement whose ``until`` has passed, and say so; True if it published the
        announcement (one expired, or a newly found problem withdrew or repaired the stored one).

        Without this an old announcement stayed in the store and retained on the broker, and every
        start published it again. Its maintenance ends by itself (the monitor's own ``until``)."""
        announcement, news = self._read_announcement()
        if news:
            self.publish_announcement()  # a broken one is withdrawn (or a repaired one shown) on the broker too
        until = announcement.get("until") if announcement else None
        if until is None or _epoch_or_zero(until) > self.clock():
            return news
        self.store.delete("announcement")
        log.info("announcement expired", extra={"until": until})
        self.publish_announcement()
        return True

    def announcement(self) -> dict | None:
        """The stored announcement as it may be shown and published; None if there is none or it is broken."""
        return self._read_announcement()[0]

    def _read_announcement(self) -> tuple[dict | None, bool]:
        """The announcement, and whether the store's copy has a problem not said before.

        The store may hold anything (an older agent, a hand edit): checked field by field like the
        lobby's, each problem logged once while it lasts (this runs every second), never a crash."""
        announcement, problems = self.store.announcement()
        news = set(problems) - self._announcement_problems
        self._announcement_problems = set(problems)
        for problem in sorted(news):
            log.error("stored announcement: %s", problem, extra={"path": self.store.path})
        return announcement, bool(news)

    def request_resend(self) -> None:
        self._resend.set()

    # ------------------------------------------------------------ publishing

    def event(self, kind: str, body: dict) -> None:
        log.info("event", extra={"kind": kind, "body": body})  # body keys may clash with LogRecord's
        if self.link is not None:
            self.link.event(kind, body)

    def publish_state(self, name: str, body: dict, change: bool, min_gap_s: float = 0.0) -> None:
        """Retained state: at once on a change worth knowing, else at most every publish_interval_s.

        A change within ``min_gap_s`` of the previous change (a flapping flag) is owed, not lost: it
        goes out as a change, never a droppable sample, at the first reading after the gap."""
        now = self._monotonic()
        _, last_at = self._last.get(name, (None, float("-inf")))
        # 5 % slack: samples are read on their own schedule and land a little either side of it.
        periodic_due = now - last_at >= self.config.agent["publish_interval_s"] * 0.95
        change = change or name in self._change_owed
        if change and now - self._changed_at.get(name, float("-inf")) < min_gap_s:
            self._change_owed.add(name)
            change = False
        if not (change or periodic_due):
            return  # _last keeps what was last *published*: the next change is judged against it
        self._change_owed.discard(name)
        self._last[name] = (body, now)
        if change:
            self._changed_at[name] = now
        if self.link is not None:
            self.link.state(name, body, change=change)

    def publish_announcement(self) -> None:
        if self.link is not None:
            self.link.state("announcement", self.announcement() or {"active": False}, change=True)

    def _outage_event(self, transition, verdict: dict, starts: dict[str, float]) -> None:
        """``starts``: target -> start of the outage the log opened, went on with or closed. An outage
        open when the agent restarted ends on "unknown -> up" and is said to end all the same; both
        events carry the outage's real start."""
        body = transition.to_dict()
        body["changed_at"] = body.pop("at")  # "at" is the envelope's: when the message was made
        started = iso(starts[transition.target]) if transition.target in starts else None
        if transition.to_state == DOWN:
            self.event("outage_started", {**body, "cause": verdict.get("cause"), "started_at": started,
                                          "stopped_services": verdict.get("stopped_services", [])})
        elif transition.from_state == DOWN or transition.target in starts:
            self.event("outage_ended", {**body, "cause": verdict.get("cause"), "started_at": started})


class ProcessReports:
    """Which ``kiosk_process`` changes become events: a kiosk in a crash loop (systemd restarts it every
    few seconds) must not fill the outbox, whose events are never dropped.

    A change to a state not yet said since the kiosk was last quiet (a crash, the restart after it, a
    hang) is said at once. A repeat is held and counted; when the interval ends one event says the
    state then, ``changes`` (how many it stands for) and ``restarts`` (how many times the kiosk was seen
    running again), and a new interval begins. An interval without a change makes the kiosk quiet. So
    a crash loop costs one event per ``FLAP_INTERVAL_S``, and the state it settles in is said within one."""

    def __init__(self, interval_s: float = FLAP_INTERVAL_S, monotonic=time.monotonic):
        self.interval_s, self._monotonic = interval_s, monotonic
        self._ends = float("-inf")  # when the current interval ends
        self._seen: set[str] = set()  # states said since the kiosk was last quiet
        self._held: dict | None = None  # the latest change not yet said
        self._changes = self._restarts = 0  # not yet said
        self._said: str | None = None  # the state the last event said

    def offer(self, change: dict | None) -> dict | None:
        """``change``: KioskWatch.poll()'s body or None, every second; the event to send now, if any."""
        now = self._monotonic()
        if change is not None:
            if now >= self._ends and self._held is None:  # quiet for an interval: start afresh
                self._ends, self._seen = now + self.interval_s, set()
            self._held = change
            self._changes += 1
            self._restarts += int(change["state"] == "running" and change["was"] is not None)
            if change["state"] not in self._seen:
                return self._say(change)
        if self._held is not None and now >= self._ends:
            self._ends = now + self.interval_s
            return self._say(self._held)
        return None

    def _say(self, body: dict) -> dict:
        was = body["was"] if self._said is None else self._said  # the last event's state, held ones between
        report = {**body, "was": was, "changes": self._changes, "restarts": self._restarts}
        self._held, self._changes, self._restarts, self._said = None, 0, 0, body["state"]
        self._seen.add(body["state"])
        return report


def _monotonic() -> float:
    return time.monotonic()  # looked up at each call, so a test may replace time.monotonic


def _epoch_or_zero(text: str) -> float:
    """An announcement's end; 0 (long past) for one stored unreadable by an older version."""
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError):
        return 0.0


def build_monitor(kiosk: Config, config: AgentConfig, clock, probe=None) -> NetworkMonitor:
    a = config.agent
    policy = Policy(interval_s=a["probe_interval_s"], fail_after=a["fail_threshold"],
                    recover_after=a["success_threshold"])
    targets = [target_from_config(t) for t in config.targets]
    extra = {"probe": probe} if probe is not None else {}
    return NetworkMonitor(targets, policy, services=kiosk.services, clock=clock, **extra)


def target_from_config(t: dict) -> Target:
    return Target(name=t["name"], kind=t["kind"], role=t["role"], host=t["host"], port=t["port"] or None,
                  url=t["url"], query_name=t["query_name"], expect_status=t["expect_status"],
                  timeout_s=t["timeout_ms"] / 1000 or None, count=(t["count"] or None) if t["kind"] == "icmp" else None,
                  ca_file=t["ca_file"] or None,
                  degraded_loss=t["degraded_loss_percent"] / 100, degraded_rtt_ms=float(t["degraded_rtt_ms"]))


def build_link(kiosk: Config, config: AgentConfig, handlers: dict, clock=time.time):
    if not config.mqtt["enabled"]:
        return None
    from edge_agent.commands import CommandDispatcher
    from edge_agent.mqtt import MqttLink, Tls
    from edge_agent.outbox import Outbox

    m = config.mqtt
    tls = Tls(m["ca_file"], m["cert_file"] or None, m["key_file"] or None) if m["tls"] else None
    outbox = Outbox(os.path.join(config.data_dir, "outbox.sqlite3"), config.agent["outbox_max_bytes"])
    username = m["username"] or f"{kiosk.office_id}-{kiosk.id}"
    # The broker binds client ids to accounts (use_username_as_clientid): the id is the username
    # whatever we send, so send that and the broker's log and ours name the same client.
    return MqttLink(host=m["host"], port=m["port"], client_id=username,
                    username=username, password=mqtt_password(m), tls=tls,
                    keepalive_s=m["keepalive_s"], topic_base=config.topic_base, outbox=outbox,
                    dispatcher=CommandDispatcher(handlers, clock), kiosk_id=kiosk.id, office_id=kiosk.office_id,
                    discovery=ha_components.discovery(kiosk, config))
