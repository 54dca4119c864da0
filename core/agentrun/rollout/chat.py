"""One chat-completions request over HTTP: the call, the typed reply, and the errors worth a retry.

The wire contract is vLLM's OpenAI-compatible endpoint: the body goes as built by the caller, and the
reply is validated into the few fields a trajectory keeps (vLLM's `prompt_token_ids` and `token_ids`
included); everything else in it is parsed and dropped.

Why not the OpenAI SDK: replaying the rollout benchmark's 320 requests (bench/rollout_overhead.py: 64
concurrent conversations x 5 turns, the scripted server in its own process, 2 shared cores), client CPU
per request, reply parsing and the turn record included, with the byte-level fake tokens of the time
(long replies):
- `AsyncOpenAI.post` over httpx2 + `ChatCompletion.model_validate_json`: 5.7 ms. httpcore2 checks
  every pooled connection (a socket poll each) on every request and every close, so with 64 keep-alive
  connections the pool costs more than the request; the SDK's request building adds ~0.5 ms.
- the SDK over aiohttp (`openai.DefaultAioHttpClient`): 3.2 ms.
- `httpx2.AsyncClient.post` + a small pydantic reply model: 3.4 ms (the same pool).
- aiohttp `ClientSession.post` + the same reply model: 1.9 ms; with `pydantic_core.from_json` into
  dicts 1.7 ms, a difference in the noise, so the reply stays typed (a malformed reply is a validation
  error naming the field, not a KeyError).
With replies of realistic size (the current fake tokenizer) this module measured 0.65-0.85 ms where
the SDK over httpx2 took 4.6 ms. The session does not read proxies or netrc from the environment
(`trust_env`): aiohttp then looks both up in a worker thread on every request, which cost ~0.7 ms; the
model server is reached directly (in-cluster service or localhost), as vLLM deployments are.
The SDK stays where its conveniences matter (the LLM judge).

A reply's text may hold anything the model wrote, lone UTF-16 surrogates included (a server that
escapes them sends valid JSON that pydantic's parser refuses): such a reply is parsed with the
trajectory module's `from_json`. A conversation holding such text is sent with each lone surrogate
replaced by U+FFFD (`without_lone_surrogates`): vLLM's tokenizer refuses it with a 400, which would end
the episode over one odd character (tests/serving/test_server.py holds both servers to this).

Errors keep the SDK's retry classes: transport errors and timeouts, 429 and 5xx are retryable; any
other status is final, and its message carries the status code and the server's own message.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import aiohttp
import pydantic_core
from pydantic import ValidationError

from agentrun.rollout.trajectory import from_json, to_json, without_lone_surrogates
from agentrun.wire import Completion


class ChatRequestError(Exception):
    """A chat request that did not produce a completion."""

    retryable: bool = True


class TransportError(ChatRequestError):
    """The request or its reply did not make it through: no connection, or one that broke."""


class RequestTimeout(TransportError):
    """No complete reply within the request timeout."""


class StatusError(ChatRequestError):
    """The server answered with an error status; 429 and 5xx are worth a retry, other codes are final."""

    def __init__(self, status: int, message: str) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "error"
        super().__init__(f"HTTP {status} {reason}: {message}")
        self.status = status
        self.retryable = status == 429 or status >= 500


def _error_message(payload: bytes) -> str:
    """The server's own message: vLLM's and OpenAI's `{"error": {"message"}}`, FastAPI's `detail`, or the text."""
    try:
        body = pydantic_core.from_json(payload)
    except ValueError:
        return payload[:500].decode("utf-8", "replace") or "(empty body)"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        for key in ("message", "detail"):
            if key in body:
                return str(body[key])
    return str(body)[:500]


def _completion(payload: bytes) -> Completion:
    """The reply, validated; pydantic's own JSON parser first, as it is the fast one."""
    try:
        return Completion.model_validate_json(payload)
    except ValidationError as error:
        if error.errors()[0]["type"] != "json_invalid":
            raise
        try:
            data = from_json(payload)  # valid JSON the fast parser refuses: lone-surrogate escapes
        except ValueError:
            raise error from None
    return Completion.model_validate(data)


def _request_json(body: dict[str, Any]) -> str:
    text = to_json(body)
    # to_json escapes a lone surrogate as "\udXXX"; the walk is paid only when one may be there
    return to_json(without_lone_surrogates(body)) if "\\ud" in text else text


class ChatEndpoint:
    """`POST {base_url}/chat/completions` over at most `connections` keep-alive connections.

    The connection pool is opened at the first request, in the running event loop; `aclose` closes it.
    """

    def __init__(self, base_url: str, api_key: str, timeout_seconds: float, connections: int) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def complete(self, body: dict[str, Any]) -> Completion:
        """Send one request; raise a `ChatRequestError` for a failure of transport or status."""
        try:
            async with self._http().post(self._url, data=_request_json(body).encode(), headers=self._headers) as reply:
                payload = await reply.read()
        except TimeoutError as error:
            raise RequestTimeout(f"no reply from {self._url} within {self._timeout.total} s") from error
        except aiohttp.ClientError as error:
            raise TransportError(f"{self._url}: {type(error).__name__}: {error}") from error
        if not 200 <= reply.status < 300:
            raise StatusError(reply.status, _error_message(payload))
        return _completion(payload)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
