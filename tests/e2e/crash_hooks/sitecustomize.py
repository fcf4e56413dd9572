"""Crash injection for the crash-recovery tests, kept out of production code.

A process started with this folder on PYTHONPATH and ``SCAIECHO_CRASH_AFTER=<step>`` (one of
tombstone, shred, evict) dies with exit code 70 right after that step of an erasure completes:
when `edge_server.speakers.erasure` is imported, its step function is wrapped. Python imports
this module at start-up (the `site` machinery), before any of the appliance's code runs.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import inspect
import os
import sys
from types import ModuleType
from typing import Any

TARGET = "edge_server.speakers.erasure"
STEP = os.environ.get("SCAIECHO_CRASH_AFTER")


def crash_after(function: Any) -> Any:
    """``function`` that ends the whole process once it returned."""
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            await function(*args, **kwargs)
            os._exit(70)

        return run_async

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        function(*args, **kwargs)
        os._exit(70)

    return run


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        setattr(module, STEP or "", crash_after(getattr(module, STEP or "")))


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != TARGET:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader)
        return spec


if STEP in ("tombstone", "shred", "evict"):
    import importlib.util

    sys.meta_path.insert(0, _Finder())
