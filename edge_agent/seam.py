"""The lobby's one door into the agent: what the lobby page may use of the agent's files.

- ``agent_data_dir``: where the agent keeps its files (one rule for both).
- ``AgentStore`` (``<agent data_dir>/agent.sqlite3``): the announcement staff post and clear, the
  staff sessions and the failed-login counts; ``read_announcement`` reads the announcement on show,
  read-only and checked. ``SEVERITIES``: the announcement severities the store accepts.
- ``network.json``: the agent writes it after every probe round (``write_network``); the lobby reads
  it, checked field by field (``read_network``). ``ServiceState`` and ``CauseCode``: what its verdict's
  ``services[].status`` and ``cause.code`` hold.

Nothing else of ``edge_agent`` is for the lobby (tests/test_import_rules.py checks it).
"""

from edge_agent.config import agent_data_dir
from edge_agent.network_file import NETWORK_FILE, read_network, write_network
from edge_agent.states import CauseCode, ServiceState
from edge_agent.store import SEVERITIES, AgentStore, read_announcement

__all__ = ["NETWORK_FILE", "SEVERITIES", "AgentStore", "CauseCode", "ServiceState", "agent_data_dir",
           "read_announcement", "read_network", "write_network"]
