"""A process that records sessions to a store: run by the multi-process tests.

``python -m tests.record.worker URL SESSIONS TOKENS DELAY`` records SESSIONS
concurrent sessions of TOKENS tokens each (``"t0 t1 t2 ..."``), DELAY seconds
apart, printing each session's id as it starts, then ``done``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import l0_core as l0


def tokens(n: int, delay: float) -> object:
    async def source() -> AsyncIterator[str]:
        for i in range(n):
            if delay:
                await asyncio.sleep(delay)
            yield f"t{i} "

    return source


async def one(url: str, n: int, delay: float) -> None:
    stream = l0.run(stream=tokens(n, delay), record=url, context={"worker": sys.argv[0]})
    started = False
    async for _event in stream:
        if not started:
            print(stream.id, flush=True)
            started = True
    await stream.recording.wait()


async def main() -> None:
    url, sessions, n, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    await asyncio.gather(*(one(url, n, delay) for _ in range(sessions)))
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
