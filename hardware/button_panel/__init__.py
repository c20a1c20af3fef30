"""Firmware for the Antrean button panel (Raspberry Pi Pico, MicroPython). Pure logic; main.py wires it to machine."""
