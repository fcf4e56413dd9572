"""Brute-force limiting of API key checks, on a fake clock."""

from __future__ import annotations

from edge_server.access.brute_force import AuthGuard, GuardLimits, key_id_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_held_off_after_its_failures_until_the_window_has_room() -> None:
    clock = Clock()
    guard = AuthGuard(GuardLimits(per_address=3, per_key=100, window_s=60), clock)
    for _ in range(3):
        assert guard.retry_after("10.0.0.1", None) == 0
        guard.failed("10.0.0.1", None)
        clock.now += 1
    assert guard.retry_after("10.0.0.1", None) == 57  # the oldest failure leaves the window then
    assert guard.retry_after("10.0.0.2", None) == 0  # another address is not affected
    clock.now += 57
    assert guard.retry_after("10.0.0.1", None) == 0


def test_one_key_id_is_protected_against_guesses_from_many_addresses() -> None:
    clock = Clock()
    guard = AuthGuard(GuardLimits(per_address=100, per_key=2, window_s=60), clock)
    guard.failed("10.0.0.1", "abc")
    guard.failed("10.0.0.2", "abc")
    assert guard.retry_after("10.0.0.3", "abc") == 60
    assert guard.retry_after("10.0.0.3", "other") == 0


def test_key_ids_are_read_from_the_key_shape() -> None:
    assert key_id_of("sce_abc123_secret_with_underscores") == "abc123"
    assert key_id_of("not-a-key") is None and key_id_of(None) is None and key_id_of("sce__x") is None
