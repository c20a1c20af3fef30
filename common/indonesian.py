"""Dates the way Indonesians write them, for tickets and the lobby screen alike."""

from datetime import date

WEEKDAYS = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli",
          "Agustus", "September", "Oktober", "November", "Desember")


def format_day(d: date) -> str:
    """``Senin, 23 November 2026``: how Indonesians write a date on a form."""
    return f"{WEEKDAYS[d.weekday()]}, {d.day} {MONTHS[d.month - 1]} {d.year}"
