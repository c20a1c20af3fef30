"""PressGuard with a fake clock: cooldown per service and the hoarding alarm."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.clock import ManualClock

from kiosk.buttons import ButtonError
from kiosk.buttons.guard import PressGuard


@pytest.fixture
def clock():
    return ManualClock()


def test_cooldown_gives_one_ticket_per_press(clock):
    guard = PressGuard(cooldown_s=2.0, clock=clock)
    results = []
    for t in (0.0, 0.05, 1.99, 2.0):
        clock.now = t
        results.append(guard.accept("A"))
    assert results == [True, False, False, True]


def test_cooldown_counts_from_the_last_accepted_press(clock):
    guard = PressGuard(cooldown_s=2.0, clock=clock)
    results = []
    for t in (0.0, 1.5, 2.5, 3.0):
        clock.now = t
        results.append(guard.accept("A"))
    assert results == [True, False, True, False]


def test_services_are_independent(clock):
    guard = PressGuard(cooldown_s=2.0, clock=clock)
    assert guard.accept("A") and guard.accept("B")
    assert not guard.accept("A") and not guard.accept("B")


def test_burst_alarm_fires_once_then_rearms(clock):
    guard = PressGuard(burst_max=3, burst_window_s=10.0, clock=clock)
    alarms = []
    for t in (0, 1, 2, 3, 4):
        clock.now = t
        alarms.append(guard.record_ticket("A"))
    assert alarms == [False, False, False, True, False]
    assert guard.burst_count("A") == 4  # capped at burst_max + 1: memory stays bounded
    clock.now = 12.5  # tickets at 0, 1, 2 have left the window
    assert guard.record_ticket("A") is False  # 3, 4, 12.5: back to normal, re-armed
    clock.now = 12.9  # 3, 4, 12.5, 12.9: a new burst
    assert guard.record_ticket("A") is True


def test_burst_is_counted_per_service(clock):
    guard = PressGuard(burst_max=1, burst_window_s=10.0, clock=clock)
    assert guard.record_ticket("A") is False
    assert guard.record_ticket("B") is False
    assert guard.record_ticket("A") is True
    assert guard.burst_count("B") == 1
    assert guard.burst_count("C") == 0


def test_burst_count_forgets_old_tickets(clock):
    guard = PressGuard(burst_max=10, burst_window_s=300.0, clock=clock)
    for _ in range(1000):
        guard.record_ticket("A")
    assert guard.burst_count("A") == 11
    clock.now = 300.0
    assert guard.burst_count("A") == 0


@pytest.mark.parametrize("kwargs, name", [
    ({"cooldown_s": -1}, "cooldown_s=-1"),
    ({"burst_max": 0}, "burst_max=0"),
    ({"burst_window_s": 0}, "burst_window_s=0"),
])
def test_bad_settings_name_the_value(kwargs, name):
    with pytest.raises(ButtonError, match=name):
        PressGuard(**kwargs)


gaps = st.lists(st.floats(min_value=0.0, max_value=5.0, allow_nan=False), max_size=60)


@given(gaps=gaps, cooldown=st.floats(min_value=0.0, max_value=3.0, allow_nan=False))
def test_accepted_presses_are_at_least_cooldown_apart(gaps, cooldown):
    clock = ManualClock(100.0)
    guard = PressGuard(cooldown_s=cooldown, clock=clock)
    accepted = []
    for gap in gaps:
        clock.now += gap
        if guard.accept("A"):
            accepted.append(clock.now)
        else:  # and nothing is refused without reason
            assert clock.now - accepted[-1] < cooldown
    assert all(later - earlier >= cooldown for earlier, later in zip(accepted, accepted[1:]))


@given(gaps=gaps, burst_max=st.integers(min_value=1, max_value=5))
def test_burst_alarm_matches_a_naive_count(gaps, burst_max):
    window = 10.0
    clock = ManualClock()
    guard = PressGuard(burst_max=burst_max, burst_window_s=window, clock=clock)
    history, armed = [], True
    for gap in gaps:
        clock.now += gap
        history.append(clock.now)
        over = sum(1 for t in history if clock.now - t < window) > burst_max
        assert guard.record_ticket("A") is (over and armed)
        armed = not over
