"""Antrean edge agent: the office's network health and the kiosk's own health over MQTT.

It reads the kiosk's state and events from the ledger, read-only; see
docs/architecture.md, "The seam to the edge agent", and docs/agent.md.
"""
