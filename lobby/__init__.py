"""The lobby page: what the queue screen, the staff's phones and the office's visitors see.

A Flask app beside the agent. It reads, never probes: the network state from
``<agent data_dir>/network.json`` (written by the agent after every round,
see :func:`lobby.state.write_network`), the counts from the kiosk's
ledger (read-only), the announcement from the agent's store. See docs/lobby.md.
"""



def create_app(test_config=None):
    """The Flask app. Imported here lazily: the agent writes network.json through
    lobby.state and must not pay for Flask."""
    from lobby.app import create_app as make

    return make(test_config)


__all__ = ["create_app"]
