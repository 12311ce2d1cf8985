"""Drivers: run command and query generators against a store.

The synchronous driver serves the WSGI app and the command line; the async
one serves the ASGI app. Both hand each request of a generator to the store
and send the result back in, so the rules live in the generators alone.
"""

from __future__ import annotations

import random
import time

from damba.protocol import Backoff, Commit, Operation, Read, ReadEvents


def backoff_seconds(attempt: int) -> float:
    """Return a jittered pause before attempt ``attempt + 1``, at most 50 ms."""
    return random.uniform(0, min(0.05, 0.002 * 2**attempt))


def run(store, operation: Operation) -> dict:
    """Drive ``operation`` to completion against a synchronous store."""
    result = None
    try:
        while True:
            request = operation.send(result)
            if isinstance(request, Read):
                result = store.read(request)
            elif isinstance(request, Commit):
                result = store.commit(request)
            elif isinstance(request, ReadEvents):
                result = store.read_events(request)
            elif isinstance(request, Backoff):
                time.sleep(backoff_seconds(request.attempt))
                result = None
            else:
                raise TypeError(f"unknown store request {request!r}")
    except StopIteration as finished:
        return finished.value


async def run_async(store, operation: Operation) -> dict:
    """Drive ``operation`` to completion against an asyncio store."""
    import asyncio

    result = None
    try:
        while True:
            request = operation.send(result)
            if isinstance(request, Read):
                result = await store.read(request)
            elif isinstance(request, Commit):
                result = await store.commit(request)
            elif isinstance(request, ReadEvents):
                result = await store.read_events(request)
            elif isinstance(request, Backoff):
                await asyncio.sleep(backoff_seconds(request.attempt))
                result = None
            else:
                raise TypeError(f"unknown store request {request!r}")
    except StopIteration as finished:
        return finished.value
