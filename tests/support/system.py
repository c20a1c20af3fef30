"""What a test needs from the machine: skipped where a component is missing, failed in CI."""

import os


def need(available: bool, reason: str) -> None:
    """Skip a test whose system component is missing, except in CI, where that is a failure."""
    if available:
        return
    import pytest  # here, so that the benchmarks import the harness without pytest

    if os.environ.get("ANTREAN_TEST_REQUIRE_SYSTEM"):
        pytest.fail(f"{reason} (CI must run this: install it with bash .ci/system-packages)")
    pytest.skip(reason)
