"""The test harness: what the tests (and the benchmarks) start, build and wait with.

- :mod:`support.clock`: office time (``at``, ``JAKARTA``), a system clock the test sets, a settable clock.
- :mod:`support.config`: the one builder of the kiosk's TOML file, and its presets.
- :mod:`support.kiosk_process`: ``kiosk run`` / ``edge-agent run`` as processes, ready at sd_notify READY=1.
- :mod:`support.kiosk_inproc`: in-process kiosks (the ``kiosks`` fixture).
- :mod:`support.broker`: a real Mosquitto with the shipped config (the ``broker`` fixture) and MQTT clients.
- :mod:`support.proxy`: a TCP fault proxy (hold, cut), shared with benchmarks/agent.py.
- :mod:`support.dns`: a DNS server on loopback (records, lost replies, error codes).
- :mod:`support.wait`: ``wait_until``, for what raises no event to wait on.
- :mod:`support.system`: ``need``, a skip (a failure in CI) where a system component is missing.
- :mod:`support.liveness`, :mod:`support.netns`, :mod:`support.outage_lab`, :mod:`support.browser`:
  a stand-in live kiosk, network namespaces, the broker outage day's office, a headless Chromium.

tests/ is on sys.path under pytest (tests/conftest.py's folder); a benchmark puts it there itself
(benchmarks/_common.py). Only the light helpers are imported here: nothing starts at import.
"""

from support.clock import JAKARTA, FakeSystemClock, at
from support.system import need
from support.wait import wait_until

__all__ = ["JAKARTA", "FakeSystemClock", "at", "need", "wait_until"]
