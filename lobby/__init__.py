"""The lobby page: what the queue screen, the staff's phones and the office's visitors see.

A Flask app beside the agent. It reads, never probes: the network state from
``<agent data_dir>/network.json`` (written by the agent after every round),
the counts from the kiosk's ledger (read-only), the announcement from the
agent's store. It reaches the kiosk only through ``kiosk.seam`` and the agent
only through ``edge_agent.seam``. See docs/lobby.md.
"""


def create_app(test_config=None):
    """The Flask app. Imported here lazily: the agent's command line checks ``lobby.config`` before it
    starts anything, and must not pay for Flask when the office has no lobby."""
    from lobby.app import create_app as make

    return make(test_config)


__all__ = ["create_app"]
