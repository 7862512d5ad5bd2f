"""Dependencies whose absence costs no error, only time."""

from __future__ import annotations

import asyncio
import sys


def test_httpcore_finds_its_async_library_without_a_failed_import_per_call():
    """httpcore imports sniffio in every `current_async_library()` call, four times per upstream request;
    without sniffio installed, each call's failed import searched every sys.path entry again (41 us, against
    0.9 us with it: encode/httpcore#1103). The import succeeds, so it is kept in sys.modules."""
    from httpcore._synchronization import current_async_library

    async def detect() -> str:
        return current_async_library()

    assert asyncio.run(detect()) == "asyncio"
    assert "sniffio" in sys.modules
