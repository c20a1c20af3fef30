"""The headquarters dashboard (Flask, server-rendered, no external assets)."""
