"""A worker process of the multi-process test (``python -m tests.scale.worker``).

It serves the sessions it is given (the real openai SDK against the test's
fault-injecting server, recorded to the shared store), prints ``started ID N``
for each, then ``ready``; meanwhile it looks for orphaned sessions (whose
worker died) every 0.1 s and resumes those it wins (``resumed ID``). A line on
its stdin tells it to finish: it waits for its sessions, closes the store and
prints ``done``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from openai import AsyncOpenAI

import l0_core as l0
from l0_core.record import open_store
from l0_core.scale.resume import orphans

OPTIONS: dict[str, Any] = {
    "continue_from_last_good_token": True,
    "check_intervals": l0.CheckIntervals(checkpoint=4),
    "retry": l0.Retry(attempts=4, network_attempts=4, max_retries=8),
    # long: worker 0's streams stall until it is killed (the test's server does that)
    "timeout": l0.Timeout(initial_token=30.0, inter_token=30.0),
}


def factory_for(client: AsyncOpenAI, n: int) -> Any:
    async def factory(resume: l0.Resume | None) -> Any:
        messages = [{"role": "user", "content": f"story {n}"}]
        if resume is not None:
            messages += [{"role": "assistant", "content": resume.checkpoint},
                         {"role": "user", "content": resume.prompt}]
        return await client.chat.completions.create(model="gpt-4o-mini", messages=messages,
                                                    stream=True)  # type: ignore[arg-type]

    return factory


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def reaper(store: Any, client: AsyncOpenAI, reading: list[asyncio.Task[str]]) -> None:
    while True:
        for orphan in await orphans(store):
            try:
                resumed = await l0.resume(orphan.stream_id, store=store,
                                          stream=factory_for(client, int(orphan.context["n"])),
                                          **OPTIONS)
            except l0.RecordingError as exc:
                say(f"lost {orphan.stream_id} {exc}")  # another worker won it
                continue
            except Exception as exc:  # said, for the test's diagnostics; the sweep goes on
                say(f"failed {orphan.stream_id} {exc!r}")
                continue
            say(f"resumed {orphan.stream_id} at {time.time():.2f}")
            reading.append(asyncio.create_task(resumed.read()))
        await asyncio.sleep(0.1)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    store = open_store(args.store)
    client = AsyncOpenAI(base_url=args.base_url, api_key="test", max_retries=0)
    reading: list[asyncio.Task[str]] = []
    streams = []
    for n in range(args.first, args.first + args.count):
        stream = l0.run(stream=factory_for(client, n), record=store, context={"n": n},
                        **OPTIONS)
        streams.append(stream)
        reading.append(asyncio.create_task(stream.read()))
        say(f"started {stream.id} {n}")
    say("ready")
    sweeping = asyncio.create_task(reaper(store, client, reading))
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    sweeping.cancel()
    await asyncio.gather(*reading, return_exceptions=True)
    for stream in streams:
        if stream.recording is not None:
            await stream.recording.wait()
    await client.close()
    await store.close()
    say("done")


if __name__ == "__main__":
    asyncio.run(main())
