"""Headquarters: the fleet monitor that watches every office through the clustered broker.

It reads only what the agents send (``edge_agent.schema``) and keeps it in its own store (SQLite for a
regency on one machine, PostgreSQL at national scale). See docs/headquarters.md.
"""
