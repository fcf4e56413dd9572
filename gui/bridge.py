"""How screens reach the network loop: `Bridge` runs coroutines there and calls back on the GUI
thread; `DesktopContext` is what every tab shares (the bridge, the client once connected)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from gui.client import ApiClient, ApiFailure, Worker


class Bridge(QObject):
    """Runs coroutines on the network loop and calls back on the GUI thread."""

    finished = Signal(object, object, object)  # callback, result, error

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker
        self.finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def run(
        self, coro: Coroutine[Any, Any, Any], done: Callable[[Any], None], failed: Callable[[ApiFailure], None]
    ) -> None:
        """Start ``coro``; ``done(result)`` or ``failed(error)`` later, on the GUI thread."""
        future = self.worker.submit(coro)

        def settle(f: Any) -> None:
            error = f.exception()
            if error is None:
                self.finished.emit(done, f.result(), None)
            else:
                failure = error if isinstance(error, ApiFailure) else ApiFailure(None, None)
                self.finished.emit(failed, None, failure)

        future.add_done_callback(settle)

    @staticmethod
    def _deliver(callback: Callable[[Any], None], result: Any, error: Any) -> None:
        callback(error if error is not None else result)


@dataclass
class DesktopContext:
    """What the tabs share: the bridge to the network loop, and the client of the appliance once connected."""

    bridge: Bridge
    client: ApiClient | None = None
    #: The appliance's address, for error messages.
    url: str = ""
