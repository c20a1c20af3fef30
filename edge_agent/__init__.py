"""Antrean edge agent: the office's network health and the kiosk's own health over MQTT.

Not built yet (issue 4). It will read the kiosk's state and events from the
ledger, read-only; see docs/architecture.md, "The seam to the edge agent".
"""
