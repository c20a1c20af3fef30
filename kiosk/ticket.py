"""What a ticket is, independent of how it is stored or printed."""

from dataclasses import dataclass
from datetime import date, datetime

from kiosk.seam.states import TicketStatus


@dataclass(frozen=True)
class Ticket:
    id: int
    office_id: str
    service: str  # the service's code letter, e.g. "A"
    service_day: date
    number: int
    issued_at: datetime  # timezone-aware, in the office's timezone
    people_before: int  # non-void tickets with a lower number that day
    status: TicketStatus = TicketStatus.ISSUED
    print_attempts: int = 0

    @property
    def label(self) -> str:
        return format_label(self.service, self.number)


def format_label(service: str, number: int) -> str:
    """``A-001``: three digits fit any realistic daily quota; more just widen."""
    return f"{service}-{number:03d}"
