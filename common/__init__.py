"""Helpers every part of Antrean uses and none of them owns: SQLite the project's way, files that survive a
power cut, the config file reader, logs, sd_notify, backends chosen by name, problem lists.

Nothing here knows about tickets, probes or pages; ``kiosk``, ``edge_agent`` and ``lobby`` build on it.
"""
