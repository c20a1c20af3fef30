"""The one way a test waits for something that raises no event it could wait on."""

import time


def wait_until(predicate, timeout_s: float = 10.0, what: str = "the condition", every_s: float = 0.01):
    """Look at ``predicate`` until it is true; its value. Fails saying ``what`` did not happen in time.

    For states inside another thread or another process (a counter, a file, a ledger row): the test
    cannot be woken by them, so it looks again every ``every_s``.
    """
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(every_s)
    return value
