"""Antrean kiosk: durable, quota-bound queue tickets from a button press to ESC/POS bytes."""

__version__ = "0.1.0"
