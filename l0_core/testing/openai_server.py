"""A real OpenAI-compatible HTTP server for tests, built on the standard library only.

:class:`OpenAIServer` listens on ``127.0.0.1`` (a free port), speaks HTTP/1.1
with keep-alive, and answers the endpoints an OpenAI client uses:

* ``POST /v1/chat/completions`` (and Azure's ``.../deployments/{name}/chat/completions``):
  streamed (``stream: true``: ``chat.completion.chunk``
  server-sent events in a chunked body, ending with a chunk that carries
  ``finish_reason`` and then ``data: [DONE]``) or not (one ``chat.completion``);
* ``POST /v1/responses``: the Responses API, streamed (``response.created``,
  ``response.output_text.delta``, ..., ``response.completed``) or not;
* ``GET /v1/models`` and ``GET /v1/models/{id}``.

Every completion request plays one :class:`Turn`: the first request plays
``turns[0]``, the second ``turns[1]``, and the last turn repeats. A turn says
what the response is made of (tokens, tool calls, usage, the finish reason) and
which fault to inject: an HTTP error status with ``retry-after`` headers, a
connection cut after *n* tokens, a stall before the headers or after *n* tokens,
a malformed SSE line, an in-band error event, a stream that ends without
``[DONE]`` or without a finish reason, ``finish_reason: "length"``... ::

    from openai import AsyncOpenAI
    from l0_core.testing.openai_server import OpenAIServer, Turn

    async with OpenAIServer(turns=[
        Turn(status=429, retry_after=1),              # request 1: rate limited
        Turn(tokens=["Hel", "lo"], cut_after=1),      # request 2: cut after "Hel"
        Turn(tokens=["Hello", "!"]),                  # request 3 (and later): fine
    ]) as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="test")
        ...
        assert len(server.requests) == 3
        await client.close()
        assert await server.wait_disconnected()       # every connection was closed

The server records every request (:attr:`OpenAIServer.requests`: method,
path, headers and JSON body), counts the connections the client abandoned
before the server finished writing its response (:attr:`OpenAIServer.abandoned`;
found through write errors and the end of the client's half of the connection)
and the connections open right now (:attr:`OpenAIServer.open_connections`), with the most
open at once (:attr:`OpenAIServer.peak_connections`, and :attr:`OpenAIServer.peak_active`
for responses being written). Each request records when it arrived
(:attr:`RecordedRequest.at`, ``time.monotonic()``).

``turns`` can also be a function of the :class:`RecordedRequest`, for tests with
many concurrent clients that need a script per conversation.

The module is part of ``l0_core.testing`` so that plugin authors can use it in
their own tests; it needs no third-party package.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import socket
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OpenAIServer", "RecordedRequest", "ToolCallSpec", "Turn"]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Site Overloaded",
}

# The error objects OpenAI sends for each status (``{"error": {...}}``).
_DEFAULT_ERRORS: Mapping[int, Mapping[str, Any]] = {
    400: {"message": "Invalid request.", "type": "invalid_request_error", "code": None},
    401: {"message": "Incorrect API key provided.", "type": "invalid_request_error",
          "code": "invalid_api_key"},
    403: {"message": "You are not allowed to use this model.", "type": "invalid_request_error",
          "code": "unsupported_country_region_territory"},
    404: {"message": "The model does not exist or you do not have access to it.",
          "type": "invalid_request_error", "code": "model_not_found"},
    408: {"message": "Request timed out.", "type": "timeout", "code": None},
    409: {"message": "Conflict.", "type": "invalid_request_error", "code": None},
    422: {"message": "Unprocessable entity.", "type": "invalid_request_error", "code": None},
    429: {"message": "Rate limit reached for requests. Please try again later.",
          "type": "requests", "code": "rate_limit_exceeded"},
    500: {"message": "The server had an error while processing your request. Sorry about that!",
          "type": "server_error", "code": None},
    502: {"message": "Bad gateway.", "type": "cf_bad_gateway", "code": None},
    503: {"message": "The engine is currently overloaded, please try again later.",
          "type": "server_error", "code": None},
    504: {"message": "Gateway timeout.", "type": "cf_gateway_timeout", "code": None},
}

_IN_BAND_ERROR: Mapping[str, Any] = {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error",
    "param": None,
    "code": None,
}


@dataclass
class ToolCallSpec:
    """One tool call the model streams.

    :param name: the function name.
    :param arguments: the raw JSON text of the arguments, streamed in
        ``fragments`` pieces (it may be malformed on purpose).
    :param id: the tool call id (default ``call_<n>``).
    :param fragments: how many ``arguments`` deltas to stream.
    """

    name: str
    arguments: str = "{}"
    id: str | None = None
    fragments: int = 3


@dataclass
class Turn:
    """What the server does for one completion request.

    Content:

    :param tokens: text pieces, one per chunk (``delta.content`` or
        ``response.output_text.delta``).
    :param tool_calls: tool calls streamed after the text (chat: ``tool_calls``
        deltas, the first with ``id`` and ``name``, then argument fragments;
        Responses API: ``function_call`` output items).
    :param finish_reason: of the final chunk (``"stop"``, ``"length"``,
        ``"tool_calls"``, ``"content_filter"``...). ``None``: no chunk carries a
        finish reason. For the Responses API ``"stop"``/``"tool_calls"`` end with
        ``response.completed``, ``"length"`` and ``"content_filter"`` with
        ``response.incomplete``, ``"failed"`` with ``response.failed`` (its
        error is ``error``), and ``None`` with no terminal event.
    :param done: send ``data: [DONE]`` at the end (chat).
    :param usage: the usage to report (defaults to counts of the request and
        the tokens). Chat streams report usage only when the request asks for it
        with ``stream_options: {"include_usage": true}``, as OpenAI does.
    :param role_chunk: start a chat stream with ``{"role": "assistant",
        "content": ""}`` as OpenAI does.
    :param choices: extra choices for ``n > 1``: each entry is the token list of
        choice 1, 2, ...; streamed interleaved with the main choice (index 0).
    :param model: the model reported (default: the request's ``model``).

    Media (a *step* is one text token or one media piece, whichever list is longer; the
    faults below count steps):

    :param audio: audio output pieces (chat, ``modalities=["text", "audio"]``): step *i*
        streams ``delta.audio`` with the base64 of ``audio[i]`` and ``tokens[i]`` as its
        ``transcript`` (no ``content``); the first carries the audio ``id``, a last chunk
        its ``expires_at``.
    :param partial_images: previews of a generated image (Responses API): step *i* sends
        ``response.image_generation_call.partial_image`` with the base64 of
        ``partial_images[i]`` (index *i*), inside an ``image_generation_call`` output item.
    :param image: the finished image of that item, sent in its ``response.output_item.done``
        (``result``) after the last step.

    Faults (token counts *n* mean "after n text tokens"; ``n >= len(tokens)``
    means after all tokens, before the finish reason):

    :param status: an HTTP status other than 200 answers with OpenAI's JSON
        error body (``error`` overrides it) and ``headers``.
    :param retry_after: value of the ``retry-after`` header (seconds or an
        HTTP date). :param retry_after_ms: value of ``retry-after-ms``.
    :param headers: extra response headers (for example ``x-should-retry``).
    :param error: the error object: of the error body for a non-200 status,
        of the in-band error (``error_after``) or of ``response.failed``.
    :param error_after: after *n* tokens send an in-band error event (chat:
        ``data: {"error": {...}}``; Responses API: an ``error`` event) and end
        the stream.
    :param malformed_after: after *n* tokens send a ``data:`` line that is not
        valid JSON and end the stream.
    :param cut_after: after *n* tokens close the connection abruptly, in the
        middle of the chunked body. ``cut_mode="reset"`` sends a TCP reset
        instead of a FIN.
    :param stall_after: after *n* tokens (0: right after the headers) stop
        sending, for ``stall_for`` seconds or (``None``) until the client goes.
    :param stall_before_headers: stall before the status line is sent.
    :param delay: seconds before each token. :param first_delay: before the
        first token (instead of ``delay``).
    :param chunked: ``False`` sends the stream with ``Connection: close`` and no
        chunked encoding (the body ends when the connection does).
    """

    tokens: Sequence[str] = ()
    tool_calls: Sequence[ToolCallSpec] = ()
    finish_reason: str | None = "stop"
    done: bool = True
    usage: Mapping[str, Any] | None = None
    role_chunk: bool = True
    choices: Sequence[Sequence[str]] = ()
    model: str | None = None
    audio: Sequence[bytes] = ()
    partial_images: Sequence[bytes] = ()
    image: bytes | None = None
    status: int = 200
    retry_after: float | str | None = None
    retry_after_ms: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error: Mapping[str, Any] | None = None
    error_after: int | None = None
    malformed_after: int | None = None
    cut_after: int | None = None
    cut_mode: str = "close"
    stall_after: int | None = None
    stall_for: float | None = None
    stall_before_headers: bool = False
    delay: float = 0.0
    first_delay: float = 0.0
    chunked: bool = True

    @property
    def text(self) -> str:
        """The text of the main choice."""
        return "".join(self.tokens)

    @property
    def steps(self) -> int:
        """Text tokens or media pieces, whichever are more (the faults count these)."""
        return max(len(self.tokens), len(self.audio), len(self.partial_images))


@dataclass
class RecordedRequest:
    """One request the server received.

    ``headers`` has lower-case names; ``body`` is the parsed JSON body (or
    ``None``); ``turn`` is the index of the turn it played (``None`` for
    requests that play no turn, such as ``GET /v1/models``); ``at`` is when it
    arrived (``time.monotonic()``).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    turn: int | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def messages(self) -> list[Any]:
        """The chat messages of a chat completion request (``[]`` otherwise)."""
        if isinstance(self.body, dict):
            messages = self.body.get("messages")
            if isinstance(messages, list):
                return messages
        return []

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


class _ClientGone(Exception):
    """The client closed its connection while the server was responding."""


class _Cut(Exception):
    """The turn cut the connection on purpose."""


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def gone(self) -> bool:
        return (
            self.writer.transport.is_closing()
            or self.reader.at_eof()
            or self.reader.exception() is not None
        )


TurnSource = Sequence[Turn] | Callable[[RecordedRequest], Turn]


class OpenAIServer:
    """An OpenAI-compatible server on ``127.0.0.1`` that plays scripted turns.

    Use it as an async context manager (or call :meth:`start` and
    :meth:`stop`). Attributes and properties:

    * :attr:`base_url`: ``http://127.0.0.1:<port>/v1``, for ``AsyncOpenAI(base_url=...)``;
    * :attr:`requests`: every :class:`RecordedRequest`, in arrival order;
    * :attr:`abandoned`: responses the client closed before the server finished
      writing them (a stalled stream the client gave up on counts here);
    * :attr:`open_connections`: connections open right now;
      :attr:`connections`: connections accepted so far;
    * :attr:`active`: responses being written right now;
    * :attr:`peak_connections`, :attr:`peak_active`: the most of each at once;
      :attr:`closed_connections`: connections closed so far.

    :param turns: the turns to play, one per completion request (the last
        repeats), or a function from the request to its turn.
    :param models: the model ids ``GET /v1/models`` lists.
    """

    def __init__(
        self,
        turns: TurnSource = (),
        *,
        models: Sequence[str] = ("gpt-4o-mini", "gpt-4o"),
        host: str = "127.0.0.1",
    ) -> None:
        self.turns: TurnSource = turns if callable(turns) else list(turns) or [Turn(["Hello"])]
        self.models = list(models)
        self.host = host
        self.port = 0
        self.requests: list[RecordedRequest] = []
        self.abandoned = 0
        self.open_connections = 0
        self.connections = 0
        self.active = 0
        self.peak_connections = 0
        self.peak_active = 0
        self._scripted = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)
        self._changed: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API base URL, ending with ``/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> OpenAIServer:
        self._changed = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and close every connection (stalled ones included)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5.0)

    async def __aenter__(self) -> OpenAIServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def set_turns(self, turns: TurnSource) -> None:
        """Play these turns from now on, starting again with the first."""
        self.turns = turns if callable(turns) else list(turns)
        self._scripted = 0

    @property
    def closed_connections(self) -> int:
        """Connections accepted and closed again (by either side)."""
        return self.connections - self.open_connections

    @property
    def completion_requests(self) -> list[RecordedRequest]:
        """The requests that played a turn (chat completions and responses)."""
        return [r for r in self.requests if r.turn is not None]

    async def wait_idle(self, within: float = 5.0) -> bool:
        """Wait until no response is being written; ``False`` after ``within`` seconds."""
        return await self._wait_for(lambda: self.active == 0, within)

    async def wait_disconnected(self, within: float = 5.0) -> bool:
        """Wait until every connection is closed; ``False`` after ``within`` seconds."""
        return await self._wait_for(lambda: self.open_connections == 0, within)

    async def _wait_for(self, predicate: Callable[[], bool], within: float) -> bool:
        deadline = time.monotonic() + within
        changed = self._changed
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or changed is None:
                return predicate()
            changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.05))
        return True

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # -- connections ---------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.open_connections += 1
        self.connections += 1
        self.peak_connections = max(self.peak_connections, self.open_connections)
        conn = _Conn(reader, writer)
        cut = False
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                self.active += 1
                self.peak_active = max(self.peak_active, self.active)
                try:
                    keep_alive = await self._respond(conn, request)
                except _ClientGone:
                    self.abandoned += 1
                    break
                except _Cut:
                    cut = True
                    break
                finally:
                    self.active -= 1
                    self._notify()
                if not keep_alive or request.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping
        finally:
            if not cut:
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)
            self.open_connections -= 1
            self._notify()
            if task is not None:
                self._tasks.discard(task)

    async def _read_request(self, reader: asyncio.StreamReader) -> RecordedRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None  # the client closed an idle connection
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = b""
        if "content-length" in headers:
            raw = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            raw = b"".join(parts)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        path = target.split("?", 1)[0]
        request = RecordedRequest(method.upper(), path, headers, body)
        self.requests.append(request)
        return request

    def _turn_for(self, request: RecordedRequest) -> Turn:
        index = self._scripted
        self._scripted += 1
        request.turn = index
        turns = self.turns
        if callable(turns):
            return turns(request)
        return turns[min(index, len(turns) - 1)]

    # -- responses -------------------------------------------------------------------------

    async def _respond(self, conn: _Conn, request: RecordedRequest) -> bool:
        path = request.path.rstrip("/")
        if request.method == "GET" and path == "/v1/models":
            data = [self._model(m) for m in self.models]
            return await self._json(conn, 200, {"object": "list", "data": data})
        if request.method == "GET" and path.startswith("/v1/models/"):
            model = path[len("/v1/models/"):]
            if model in self.models:
                return await self._json(conn, 200, self._model(model))
            return await self._json(conn, 404, {"error": dict(_DEFAULT_ERRORS[404])})
        # Any ``.../chat/completions`` or ``.../responses`` path, so that Azure-style
        # ``/deployments/{name}/chat/completions`` URLs are answered too.
        if request.method == "POST" and path.endswith(("/chat/completions", "/responses")):
            turn = self._turn_for(request)
            body = request.body if isinstance(request.body, dict) else {}
            responses_api = path.endswith("/responses")
            if turn.stall_before_headers:
                await self._stall(conn, turn.stall_for)
            if turn.status != 200:
                error = dict(_DEFAULT_ERRORS.get(turn.status, _DEFAULT_ERRORS[500]))
                error.setdefault("param", None)
                if turn.error is not None:
                    error.update(turn.error)
                return await self._json(conn, turn.status, {"error": error}, self._headers(turn))
            if not body.get("stream"):
                if turn.cut_after is not None:
                    self._cut(conn, turn.cut_mode)
                if turn.stall_after is not None:
                    await self._stall(conn, turn.stall_for)
                if responses_api:
                    payload = self._response_object(turn, body, "completed", final=True)
                else:
                    payload = self._chat_completion(turn, body)
                return await self._json(conn, 200, payload, self._headers(turn))
            return await self._stream(conn, turn, body, responses_api)
        return await self._json(conn, 404, {"error": {
            "message": f"Invalid URL ({request.method} {request.path})",
            "type": "invalid_request_error", "param": None, "code": None,
        }})

    def _headers(self, turn: Turn) -> dict[str, str]:
        headers = {}
        if turn.retry_after is not None:
            headers["retry-after"] = str(turn.retry_after)
        if turn.retry_after_ms is not None:
            headers["retry-after-ms"] = str(turn.retry_after_ms)
        headers.update(turn.headers)
        return headers

    def _model(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1700000000, "owned_by": "openai"}

    def _status_line(self, status: int, headers: Mapping[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        lines.append(f"x-request-id: req_{next(self._ids)}")
        lines.append("openai-processing-ms: 1")
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send(self, conn: _Conn, data: bytes) -> None:
        if conn.gone():
            raise _ClientGone
        try:
            conn.writer.write(data)
            await conn.writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise _ClientGone from exc

    async def _json(
        self, conn: _Conn, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> bool:
        body = json.dumps(payload).encode()
        all_headers = {
            "content-type": "application/json",
            "content-length": str(len(body)),
            **(headers or {}),
        }
        await self._send(conn, self._status_line(status, all_headers) + body)
        return True

    async def _stall(self, conn: _Conn, seconds: float | None) -> None:
        """Send nothing for ``seconds`` (``None``: until the client goes away)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            if conn.gone():
                raise _ClientGone
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            try:
                data = await asyncio.wait_for(conn.reader.read(1), remaining)
            except TimeoutError:
                return
            except ConnectionError as exc:
                raise _ClientGone from exc
            if not data:
                raise _ClientGone

    def _cut(self, conn: _Conn, mode: str) -> None:
        transport = conn.writer.transport
        if mode == "reset":
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        raise _Cut

    # -- streams ---------------------------------------------------------------------------

    async def _stream(self, conn: _Conn, turn: Turn, body: Mapping[str, Any],
                      responses_api: bool) -> bool:
        headers = {"content-type": "text/event-stream; charset=utf-8",
                   "cache-control": "no-cache", **self._headers(turn)}
        if turn.chunked:
            headers["transfer-encoding"] = "chunked"
        else:
            headers["connection"] = "close"
        await self._send(conn, self._status_line(200, headers))
        chunked = turn.chunked
        builder = (_ResponsesStream(self, turn, body) if responses_api
                   else _ChatStream(self, turn, body))
        await self._events(conn, chunked, builder.opening())
        steps = turn.steps
        for i in range(steps + 1):
            if await self._fault_before(conn, turn, builder, i):
                break
            if i == steps:
                await self._events(conn, chunked, builder.closing())
                break
            wait = turn.first_delay if i == 0 and turn.first_delay else turn.delay
            if wait:
                await asyncio.sleep(wait)
            await self._events(conn, chunked, builder.step(i))
        if not chunked:
            with contextlib.suppress(ConnectionError, RuntimeError):
                conn.writer.write_eof()
                await conn.writer.drain()
            return False
        await self._send(conn, b"0\r\n\r\n")
        return True

    async def _events(
        self, conn: _Conn, chunked: bool, events: Iterable[tuple[str | None, str]]
    ) -> None:
        """Send server-sent events, each ``(name, data)`` (with chunked transfer encoding,
        each in a chunk of its own)."""
        for name, data in events:
            text = (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
            raw = text.encode()
            if chunked:
                raw = f"{len(raw):x}\r\n".encode() + raw + b"\r\n"
            await self._send(conn, raw)

    async def _fault_before(
        self, conn: _Conn, turn: Turn, builder: _ChatStream | _ResponsesStream, i: int
    ) -> bool:
        """The turn's faults due before token ``i`` (a stall, a cut connection, an error
        event, a malformed chunk): whether the stream ends here."""
        if turn.stall_after == i:
            await self._stall(conn, turn.stall_for)
        if turn.cut_after == i:
            self._cut(conn, turn.cut_mode)
        if turn.error_after == i:
            await self._events(conn, turn.chunked, [builder.error_event()])
            return True
        if turn.malformed_after == i:
            await self._events(conn, turn.chunked, [
                (None, '{"id": "chatcmpl-broken", "object": "chat.completion.chunk", '
                       '"choices": [{"index": 0, "delta": {"content": "x'),
            ])
            return True
        return False

    # -- non-streaming payloads ---------------------------------------------------------

    def _usage(self, turn: Turn, body: Mapping[str, Any]) -> dict[str, Any]:
        if turn.usage is not None:
            return dict(turn.usage)
        prompt = len(json.dumps(body.get("messages", body.get("input", "")))) // 4
        completion = len(turn.tokens)
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    def _chat_completion(self, turn: Turn, body: Mapping[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": turn.text or None,
                                   "refusal": None}
        if turn.tool_calls:
            message["tool_calls"] = [
                {"id": tc.id or f"call_{i}", "type": "function",
                 "function": {"name": tc.name, "arguments": tc.arguments}}
                for i, tc in enumerate(turn.tool_calls)
            ]
        choices = [{"index": 0, "message": message, "logprobs": None,
                    "finish_reason": turn.finish_reason or "stop"}]
        for n, extra in enumerate(turn.choices, start=1):
            choices.append({"index": n, "logprobs": None, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "".join(extra),
                                        "refusal": None}})
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": turn.model or body.get("model") or "gpt-4o-mini",
            "system_fingerprint": "fp_l0test",
            "choices": choices,
            "usage": self._usage(turn, body),
        }

    def _response_object(
        self, turn: Turn, body: Mapping[str, Any], status: str, *, final: bool,
        rid: str | None = None,
    ) -> dict[str, Any]:
        output: list[dict[str, Any]] = []
        if final:
            if turn.tokens or not turn.tool_calls:
                output.append({
                    "id": "msg_1", "type": "message", "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": turn.text, "annotations": [],
                                 "logprobs": []}],
                })
            for i, tc in enumerate(turn.tool_calls):
                output.append({"id": f"fc_{i}", "type": "function_call", "status": "completed",
                               "call_id": tc.id or f"call_{i}", "name": tc.name,
                               "arguments": tc.arguments})
        usage = None
        if final:
            u = self._usage(turn, body)
            usage = {
                "input_tokens": u.get("prompt_tokens", u.get("input_tokens", 0)),
                "output_tokens": u.get("completion_tokens", u.get("output_tokens", 0)),
                "total_tokens": u.get("total_tokens", 0),
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            }
        return {
            "id": rid or f"resp_{next(self._ids)}",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": turn.model or body.get("model") or "gpt-4o-mini",
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "error": None,
            "incomplete_details": None,
            "usage": usage,
        }


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class _ChatStream:
    """The ``chat.completion.chunk`` events of one streamed chat completion."""

    def __init__(self, server: OpenAIServer, turn: Turn, body: Mapping[str, Any]) -> None:
        self.server = server
        self.turn = turn
        self.body = body
        self.id = f"chatcmpl-{next(server._ids)}"
        self.created = int(time.time())
        self.model = turn.model or body.get("model") or "gpt-4o-mini"
        options = body.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

    def _chunk(self, choices: list[dict[str, Any]], usage: Any = None) -> str:
        chunk: dict[str, Any] = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": "fp_l0test", "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = usage
        return _dumps(chunk)

    @staticmethod
    def _choice(delta: dict[str, Any], index: int = 0, finish: str | None = None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

    def opening(self) -> list[tuple[str | None, str]]:
        out: list[tuple[str | None, str]] = []
        if self.turn.role_chunk:
            choices = [self._choice({"role": "assistant", "content": "", "refusal": None}, n)
                       for n in range(1 + len(self.turn.choices))]
            out.append((None, self._chunk(choices)))
        return out

    def step(self, i: int) -> list[tuple[str | None, str]]:
        turn = self.turn
        text = turn.tokens[i] if i < len(turn.tokens) else None
        if turn.audio:
            audio: dict[str, Any] = {"id": f"audio_{self.id}"} if i == 0 else {}
            if i < len(turn.audio):
                audio["data"] = base64.b64encode(turn.audio[i]).decode("ascii")
            if text is not None:
                audio["transcript"] = text
            return [(None, self._chunk([self._choice({"audio": audio})]))]
        out: list[tuple[str | None, str]] = []
        if text is not None:
            out.append((None, self._chunk([self._choice({"content": text})])))
        for n, extra in enumerate(self.turn.choices, start=1):
            if i < len(extra):
                out.append((None, self._chunk([self._choice({"content": extra[i]}, n)])))
        return out

    def closing(self) -> list[tuple[str | None, str]]:
        out: list[tuple[str | None, str]] = []
        n_main = len(self.turn.tokens)
        for n, extra in enumerate(self.turn.choices, start=1):
            out.extend((None, self._chunk([self._choice({"content": text}, n)]))
                       for text in extra[n_main:])
        for i, tc in enumerate(self.turn.tool_calls):
            first = {"index": i, "id": tc.id or f"call_{i}", "type": "function",
                     "function": {"name": tc.name, "arguments": ""}}
            out.append((None, self._chunk([self._choice({"tool_calls": [first]})])))
            for piece in _split(tc.arguments, tc.fragments):
                fragment = {"index": i, "function": {"arguments": piece}}
                out.append((None, self._chunk([self._choice({"tool_calls": [fragment]})])))
        if self.turn.audio:
            expiry = {"audio": {"id": f"audio_{self.id}", "expires_at": self.created + 3600}}
            out.append((None, self._chunk([self._choice(expiry)])))
        finish = self.turn.finish_reason
        if finish is not None:
            out.extend((None, self._chunk([self._choice({}, n, finish)]))
                       for n in range(1 + len(self.turn.choices)))
        if self.include_usage and finish is not None:
            out.append((None, self._chunk([], self.server._usage(self.turn, self.body))))
        if self.turn.done:
            out.append((None, "[DONE]"))
        return out

    def error_event(self) -> tuple[str | None, str]:
        error = dict(_IN_BAND_ERROR)
        if self.turn.error is not None:
            error.update(self.turn.error)
        return None, _dumps({"error": error})


class _ResponsesStream:
    """The events of one streamed Responses API response."""

    def __init__(self, server: OpenAIServer, turn: Turn, body: Mapping[str, Any]) -> None:
        self.server = server
        self.turn = turn
        self.body = body
        self.seq = 0
        self.rid = f"resp_{next(server._ids)}"
        self.item = "msg_1"
        self.has_message = bool(turn.tokens) or not (turn.tool_calls or self._has_image)
        self.image_index = 1 if self.has_message else 0

    @property
    def _has_image(self) -> bool:
        return bool(self.turn.partial_images) or self.turn.image is not None

    def _image_item(self, status: str, result: bytes | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {"id": "ig_1", "type": "image_generation_call", "status": status,
                                "result": None, "output_format": "png", "size": "1024x1024"}
        if result is not None:
            item["result"] = base64.b64encode(result).decode("ascii")
        return item

    def _image_step(self, step: str) -> tuple[str | None, str]:
        return self._event(f"response.image_generation_call.{step}", item_id="ig_1",
                           output_index=self.image_index)

    def _event(self, type_: str, **fields: Any) -> tuple[str | None, str]:
        payload = {"type": type_, "sequence_number": self.seq, **fields}
        self.seq += 1
        return type_, _dumps(payload)

    def _response(self, status: str, final: bool) -> dict[str, Any]:
        return self.server._response_object(self.turn, self.body, status, final=final,
                                            rid=self.rid)

    def opening(self) -> list[tuple[str | None, str]]:
        out = [
            self._event("response.created", response=self._response("in_progress", False)),
            self._event("response.in_progress", response=self._response("in_progress", False)),
        ]
        if self.has_message:
            out.append(self._event(
                "response.output_item.added", output_index=0,
                item={"id": self.item, "type": "message", "status": "in_progress",
                      "role": "assistant", "content": []},
            ))
            out.append(self._event(
                "response.content_part.added", item_id=self.item, output_index=0,
                content_index=0, part={"type": "output_text", "text": "", "annotations": []},
            ))
        if self._has_image:
            out.append(self._event("response.output_item.added", output_index=self.image_index,
                                   item=self._image_item("in_progress")))
            out.append(self._image_step("in_progress"))
            out.append(self._image_step("generating"))
        return out

    def step(self, i: int) -> list[tuple[str | None, str]]:
        turn = self.turn
        out: list[tuple[str | None, str]] = []
        if i < len(turn.partial_images):
            out.append(self._event(
                "response.image_generation_call.partial_image", item_id="ig_1",
                output_index=self.image_index, partial_image_index=i, output_format="png",
                partial_image_b64=base64.b64encode(turn.partial_images[i]).decode("ascii"),
            ))
        if i < len(turn.tokens):
            out.append(self._event("response.output_text.delta", item_id=self.item,
                                   output_index=0, content_index=0, delta=turn.tokens[i],
                                   logprobs=[]))
        return out

    def closing(self) -> list[tuple[str | None, str]]:
        turn = self.turn
        out: list[tuple[str | None, str]] = []
        text = turn.text
        has_message = self.has_message
        if self._has_image:
            out.append(self._image_step("completed"))
            out.append(self._event("response.output_item.done", output_index=self.image_index,
                                   item=self._image_item("completed", turn.image)))
        if has_message:
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            out.append(self._event("response.output_text.done", item_id=self.item,
                                   output_index=0, content_index=0, text=text, logprobs=[]))
            out.append(self._event("response.content_part.done", item_id=self.item,
                                   output_index=0, content_index=0, part=part))
            out.append(self._event(
                "response.output_item.done", output_index=0,
                item={"id": self.item, "type": "message", "status": "completed",
                      "role": "assistant", "content": [part]},
            ))
        base = (1 if has_message else 0) + (1 if self._has_image else 0)
        for i, tc in enumerate(turn.tool_calls):
            item = {"id": f"fc_{i}", "type": "function_call", "status": "in_progress",
                    "call_id": tc.id or f"call_{i}", "name": tc.name, "arguments": ""}
            out.append(self._event("response.output_item.added", output_index=base + i,
                                   item=item))
            out.extend(self._event("response.function_call_arguments.delta",
                                   item_id=item["id"], output_index=base + i, delta=piece)
                       for piece in _split(tc.arguments, tc.fragments))
            out.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                   output_index=base + i, arguments=tc.arguments))
            done = {**item, "status": "completed", "arguments": tc.arguments}
            out.append(self._event("response.output_item.done", output_index=base + i,
                                   item=done))
        finish = turn.finish_reason
        if finish in ("stop", "tool_calls"):
            out.append(self._event("response.completed",
                                   response=self._response("completed", True)))
        elif finish in ("length", "content_filter"):
            response = self._response("incomplete", True)
            response["incomplete_details"] = {
                "reason": "max_output_tokens" if finish == "length" else "content_filter"
            }
            out.append(self._event("response.incomplete", response=response))
        elif finish is not None:  # "failed" (or anything else)
            response = self._response("failed", True)
            response["error"] = dict(turn.error or {"code": "server_error",
                                                    "message": _IN_BAND_ERROR["message"]})
            out.append(self._event("response.failed", response=response))
        return out

    def error_event(self) -> tuple[str | None, str]:
        error = {"code": "server_error", "message": _IN_BAND_ERROR["message"], "param": None}
        if self.turn.error is not None:
            error.update({k: v for k, v in self.turn.error.items() if k != "type"})
        return self._event("error", **error)


def _split(text: str, pieces: int) -> list[str]:
    """``text`` in ``pieces`` nearly equal fragments (at least one)."""
    pieces = max(1, min(pieces, len(text) or 1))
    size = -(-len(text) // pieces) if text else 0
    if not size:
        return [text]
    return [text[i:i + size] for i in range(0, len(text), size)]
