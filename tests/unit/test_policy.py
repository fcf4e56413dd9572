"""Which backend a session gets from the tenant policy and what is loaded."""

from __future__ import annotations

import pytest

from edge_server.streaming.policy import NoBackend, choose_backend


@pytest.mark.parametrize(
    ("policy", "asr", "relay", "expected"),
    [
        ("auto", True, True, "A"),
        ("auto", True, False, "A"),
        ("auto", False, True, "B"),
        ("A", True, True, "A"),
        ("B", True, True, "B"),
        ("B", False, True, "B"),
    ],
)
def test_backend_choice(policy: str, asr: bool, relay: bool, expected: str) -> None:
    assert choose_backend(policy, asr, relay) == expected


@pytest.mark.parametrize(
    ("policy", "asr", "relay", "code"),
    [
        ("auto", False, False, "asr_unavailable"),
        ("A", False, True, "asr_unavailable"),
        ("B", True, False, "upstream_unconfigured"),
    ],
)
def test_no_backend_can_serve(policy: str, asr: bool, relay: bool, code: str) -> None:
    with pytest.raises(NoBackend) as caught:
        choose_backend(policy, asr, relay)
    assert caught.value.code == code
