"""The real in-process model, ready for tests: loaded, one token generated."""

from __future__ import annotations

import asyncio

from aurora.app.inference import ChatMessage, ChatRequest, LocalLlamaBackend


def warmed(backend: LocalLlamaBackend) -> LocalLlamaBackend:
    """`backend` with its model loaded and one token generated, as a host that has served a request is: the
    first token of a cold model (about 0.6 s here) is not what the timeouts under test are about."""

    async def one_token() -> None:
        request = ChatRequest(messages=[ChatMessage(role="user", content="Hi")], max_tokens=1)
        async for _ in backend.chat(request):
            pass

    asyncio.run(one_token())
    return backend
