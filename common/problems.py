"""How a command-line tool tells the technician every configuration problem at once."""

import sys


def say_problems(source, problems: list[str], prog: str = "kiosk") -> None:
    """Every configuration problem, one per line, for the technician to fix in one pass."""
    print(f"{prog}: invalid configuration{f' in {source}' if source else ''}:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    print(f"{prog}: nothing was started or changed; fix the above and try again", file=sys.stderr)
