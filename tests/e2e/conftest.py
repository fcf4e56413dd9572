"""The real appliance: `scaiecho-appliance up` as a subprocess, with its own data dir and port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.appliance_process import Appliance


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    """An appliance with the default two nodes, ready."""
    app = Appliance(tmp_path_factory.mktemp("appliance") / "data", nodes=2)
    try:
        app.wait_for(r"ScaiEcho ready: 2/2 pyannote nodes online")
        yield app
    finally:
        app.stop()
