"""Every sentence the lobby shows, in Indonesian (``id``) and English (``en``), in one place."""

import datetime as dt

from common.indonesian import format_day
from edge_agent.seam import CauseCode

TICKETS_VALID = {"id": "Nomor antrean yang sudah diambil tetap berlaku.",
                 "en": "Queue numbers already taken remain valid."}
CAUSES = {  # verdict.cause.code -> what a visitor understands
    CauseCode.LOCAL_LINE: ("gangguan jaringan kantor", "a fault in this office's network line"),
    CauseCode.UPLINK: ("gangguan penyedia jaringan", "a fault at the network provider"),
    CauseCode.CENTRAL: ("gangguan jaringan pusat", "a central network outage"),
    CauseCode.CENTRAL_PARTIAL: ("gangguan sebagian jaringan pusat", "a partial central network outage"),
    CauseCode.DNS: ("gangguan jaringan (DNS)", "a network fault (DNS)"),
    CauseCode.INTERNET: ("gangguan internet", "an internet outage"),
    CauseCode.OTHER: ("gangguan jaringan", "a network fault"),
}


def day_id(day: dt.date) -> str:
    return format_day(day)


def day_en(day: dt.date) -> str:
    return f"{day:%A}, {day.day} {day:%B %Y}"


def _join(names: list[str], word: str) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {word} " + names[-1]


def outage(names: list[str], since: str | None, cause: str) -> dict:
    why_id, why_en = CAUSES.get(cause, CAUSES[CauseCode.OTHER])
    when_id, when_en = (f" sejak {since}", f" since {since}") if since else ("", "")
    return {"text_id": f"Layanan {_join(names, 'dan')} terhenti{when_id} karena {why_id}.",
            "text_en": f"{_join(names, 'and')} stopped{when_en} because of {why_en}.",
            "tickets_valid_id": TICKETS_VALID["id"], "tickets_valid_en": TICKETS_VALID["en"]}


def service_available(remaining: int) -> dict:
    return {"text_id": f"Tersedia hari ini: sisa {remaining} nomor",
            "text_en": f"Available today: {remaining} numbers left"}


def service_full(next_day: dt.date | None) -> dict:
    if next_day is None:
        return {"text_id": "Kuota penuh untuk semua hari yang dapat dipesan",
                "text_en": "Full on every day that can be booked"}
    return {"text_id": f"Kuota hari ini penuh. Nomor berikutnya untuk {day_id(next_day)}",
            "text_en": f"Full today. Next numbers are for {day_en(next_day)}"}


def service_stopped(since: str | None) -> dict:
    when_id, when_en = (f" sejak {since}", f" since {since}") if since else ("", "")
    return {"text_id": f"Terhenti{when_id} karena gangguan jaringan",
            "text_en": f"Stopped{when_en} because of a network outage"}


def service_maintenance(until: str | None) -> dict:
    when_id, when_en = (f" sampai {until}", f" until {until}") if until else ("", "")
    return {"text_id": f"Sedang pemeliharaan{when_id}", "text_en": f"Under maintenance{when_en}"}


def service_unknown() -> dict:
    return {"text_id": "Jumlah antrean tidak dapat dibaca saat ini", "text_en": "Ticket counts cannot be read now"}


KIOSK_DOWN = {"id": "Mesin antrean sedang tidak berfungsi, silakan hubungi petugas.",
              "en": "The ticket machine is not working, please ask a staff member."}


def kiosk_down() -> dict:
    return {"text_id": KIOSK_DOWN["id"], "text_en": KIOSK_DOWN["en"],
            "tickets_valid_id": TICKETS_VALID["id"], "tickets_valid_en": TICKETS_VALID["en"]}


def service_kiosk_down() -> dict:
    return {"text_id": "Nomor antrean tidak dapat diambil saat ini, silakan hubungi petugas",
            "text_en": "No queue numbers can be taken now, please ask a staff member"}
