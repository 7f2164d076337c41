"""The consumer process of the multi-process test (``python -m tests.scale.consumer URL``).

It reads session ids (one JSON list on stdin), attaches to every one at once
from the start, and prints one JSON object: each id's final text.
"""

from __future__ import annotations

import asyncio
import json
import sys

import l0_core as l0
from l0_core.record import open_store


async def main() -> None:
    store = open_store(sys.argv[1])
    ids = json.loads(sys.stdin.readline())

    async def follow(stream_id: str) -> str:
        try:
            return await l0.attach(stream_id, store=store, idle_timeout=20.0).read()
        except l0.L0Error as exc:  # reported, so that the test can say what the log holds
            return f"ERROR {exc}"

    texts = await asyncio.gather(*(follow(i) for i in ids))
    await store.close()
    sys.stdout.write(json.dumps(dict(zip(ids, texts, strict=True))) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
