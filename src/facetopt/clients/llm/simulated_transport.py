"""The httpx2 transport that serves a simulated endpoint in process, inside the openai client."""

from __future__ import annotations

import httpx2

from facetopt.simulation.transport import answer


class SimulatedTransport(httpx2.AsyncBaseTransport, httpx2.BaseTransport):
    """Answers OpenAI API requests with the simulated model (`facetopt.simulation`), in process."""

    def _respond(self, request: httpx2.Request) -> httpx2.Response:
        status, payload, request_id = answer(request.method, request.url.path, request.content)
        return httpx2.Response(status, json=payload, headers={"x-request-id": request_id})

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        return self._respond(request)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        return self._respond(request)
