"""Record and replay: every session as an event log in a store, replayed without a network.

- ``store.py``: the record type, the store protocol, opening stores by URL, the memory store;
- ``sqlite.py``: the SQLite store, the embedded default;
- ``recorder.py``: recording a live session (``l0.run(record=...)``), batched, off the loop;
- ``codec.py``: events to records and back;
- ``replay.py``: ``l0.replay``;
- ``sessions.py``: what ``l0 sessions`` shows.

See ``docs/recording.md``.
"""

from __future__ import annotations

from l0_core.record.store import (
    FORMAT,
    MemoryStore,
    Record,
    Store,
    StreamInfo,
    open_store,
    store_schemes,
)

__all__ = ["FORMAT", "MemoryStore", "Record", "Store", "StreamInfo", "open_store",
           "store_schemes"]
