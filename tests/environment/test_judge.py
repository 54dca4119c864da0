"""Answer judges: normalisation, the candidate-list guard, and the LLM judge over real HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from agentrun.environment import judge
from agentrun.spec.models import JudgeKind, JudgeSpec

KEY = "sk-test-0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("$1,200", ["1200"]),
        ("$1,200.00", ["1200"]),
        ("1,200.50 dollars", ["1200.5", "dollars"]),
        ("4:30 pm", ["4:30", "pm"]),
        ("4:30PM", ["4:30", "pm"]),
        ("04:30 p.m.", ["4:30", "pm"]),
        ("9 a.m", ["9", "am"]),
        ("j.doe@enron.com", ["j", "doe", "enron", "com"]),
        ("U.S.A.", ["usa"]),
        ("The  Houston\toffice.", ["houston", "office"]),
        ("José O\u2019Neal", ["jose", "oneal"]),
        ("１２ Ｍａｙ", ["12", "may"]),  # full-width forms fold under NFKC
        ("items 1,2,3", ["items", "1", "2", "3"]),
        ("version 10.0.1", ["version", "10.0.1"]),
        ("", []),
    ],
)
def test_normalise(text: str, tokens: list[str]) -> None:
    assert judge.normalise(text) == tokens


@pytest.mark.parametrize(
    ("reference", "answer", "expected"),
    [
        ("$1,200", "1200", True),
        ("1200", "$1,200.00", True),
        ("4:30 pm", "at 4:30pm", True),
        ("The ski trip to Tahoe", "ski trip to Tahoe", True),
        ("Tahoe", "Lake Tahoe", True),
        ("Tahoe", "Tahoes", False),  # whole tokens only
        ("4:30 pm", "14:30 pm", False),
        ("Tahoe", "It was Tahoe", False),  # more than twice the reference: too verbose to trust
        ("Tahoe", "Tahoe, Aspen, Vail", False),  # listing candidates
        ("4:30 pm", "3:00 pm, 4:30 pm or 5:00 pm", False),
        ("John Smith", "John Smith and Jane Doe", False),
        ("", "anything", False),
        ("Tahoe", "", False),
    ],
)
def test_deterministic_judge(reference: str, answer: str, expected: bool) -> None:
    verdict = asyncio.run(judge.DeterministicJudge().is_correct("q?", reference, answer))
    assert verdict is expected


@dataclass
class FakeJudgeServer:
    """A fake judge endpoint implementing the OpenAI chat-completions contract on 127.0.0.1.

    It requires `Authorization: Bearer KEY` (answering 401 with the offending key echoed, as some real
    servers do, so the test can check the key is scrubbed), accepts when the reference answer occurs in
    the agent's answer, and replies either as strict JSON or wrapped in prose (`mode`). The `echo-*`
    modes answer 200 as a misconfigured proxy does, quoting the request's headers: as a completion's
    content (the key straddling its 200th character), as an HTML page, or as a JSON error object.
    """

    base_url: str = ""
    mode: str = "json"
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> JSONResponse:
            body = await request.json()
            authorization = request.headers.get("authorization", "")
            self.requests.append(body)
            self.authorizations.append(authorization)
            if authorization != f"Bearer {KEY}":
                message = f"Incorrect API key provided: {authorization.removeprefix('Bearer ')}"
                return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, 401)
            if self.mode.startswith("echo-"):
                return self.echo(authorization)
            case = json.loads(body["messages"][-1]["content"])
            accept = case["reference_answer"].casefold() in case["agent_answer"].casefold()
            verdict = json.dumps({"accept": accept, "reason": "compared"})
            content = {"json": verdict, "prose": f"Sure.\n```json\n{verdict}\n```", "junk": "no idea"}[self.mode]
            return JSONResponse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            )

        return app

    def echo(self, authorization: str) -> Response:
        quote = f"authorization: {authorization}\nhost: judge.internal\n"
        page = "502 Bad Gateway: the upstream did not answer. Request headers:\n"
        page = page.ljust(ECHO_KEY_AT - len("authorization: Bearer "), ".") + quote
        assert page.index(KEY) == ECHO_KEY_AT
        if self.mode == "echo-html":
            return Response(f"<html><body><pre>{page}</pre></body></html>", 200, media_type="text/html")
        if self.mode == "echo-json":
            return JSONResponse({"error": {"message": page, "type": "proxy_error"}})
        message = {"role": "assistant", "content": page}
        return JSONResponse({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                             "choices": [{"index": 0, "finish_reason": "stop", "message": message}]})


ECHO_KEY_AT = 190  # the key starts 10 characters before a 200-character cut


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeJudgeServer]:
    fake = FakeJudgeServer()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    fake.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    server = uvicorn.Server(uvicorn.Config(fake.app(), log_level="warning", lifespan="off", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    yield fake
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def server(fake_server: FakeJudgeServer) -> FakeJudgeServer:
    fake_server.mode = "json"
    fake_server.requests.clear()
    fake_server.authorizations.clear()
    return fake_server


def ask(llm_judge: judge.LLMJudge, reference: str, answer: str) -> bool:
    async def run() -> bool:
        async with llm_judge:
            return await llm_judge.is_correct("Where is the ski trip?", reference, answer)

    return asyncio.run(run())


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("JUDGE_KEY", KEY)
    return "JUDGE_KEY"


@pytest.mark.parametrize("mode", ["json", "prose"])
def test_llm_judge_sends_the_key_and_reads_the_verdict(server: FakeJudgeServer, key_env: str, mode: str) -> None:
    server.mode = mode
    assert ask(judge.LLMJudge(server.base_url, "judge-model", api_key_env=key_env), "Tahoe", "Lake Tahoe")
    assert not ask(judge.LLMJudge(server.base_url, "judge-model", api_key_env=key_env), "Tahoe", "Aspen")
    assert server.authorizations == [f"Bearer {KEY}"] * 2
    request = server.requests[0]
    assert request["model"] == "judge-model"
    assert request["response_format"]["json_schema"]["schema"]["required"] == ["accept", "reason"]


def test_llm_judge_reads_the_key_from_a_secret_file(server: FakeJudgeServer, tmp_path: Path) -> None:
    (tmp_path / "api-key").write_text(KEY + "\n")
    llm_judge = judge.LLMJudge(server.base_url, "m", api_key_env="UNSET_VAR", api_key_file=tmp_path / "api-key")
    assert ask(llm_judge, "Tahoe", "Tahoe")


def test_unreadable_verdict_is_a_judge_error(server: FakeJudgeServer, key_env: str) -> None:
    server.mode = "junk"
    with pytest.raises(judge.JudgeError, match="no .*accept"):
        ask(judge.LLMJudge(server.base_url, "m", api_key_env=key_env), "Tahoe", "Tahoe")


def test_key_never_appears_in_repr_or_errors(server: FakeJudgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong_key = "sk-wrong-secret-value"
    monkeypatch.setenv("JUDGE_KEY", wrong_key)
    llm_judge = judge.LLMJudge(server.base_url, "m", api_key_env="JUDGE_KEY")
    assert wrong_key not in repr(llm_judge) and wrong_key not in str(vars(llm_judge).get("endpoint"))
    with pytest.raises(judge.JudgeError) as raised:
        ask(llm_judge, "Tahoe", "Tahoe")
    assert server.authorizations == [f"Bearer {wrong_key}"]  # the server did echo it back
    assert "401" in str(raised.value) and wrong_key not in str(raised.value) and wrong_key not in repr(raised.value)
    assert raised.value.__cause__ is None and raised.value.__context__ is None  # not even as context


def fragments(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def assert_no_fragment(secret: str, texts: list[str]) -> None:
    leaks = {part for part in fragments(secret) for text in texts if part in text}
    assert not leaks, f"key fragments {sorted(leaks)} leaked"


def exception_texts(error: BaseException) -> list[str]:
    """str and repr of the error and of every exception chained to it."""
    texts = []
    current: BaseException | None = error
    while current is not None:
        texts += [str(current), repr(current), *map(str, current.args)]
        current = current.__cause__ or current.__context__
    return texts


@pytest.mark.parametrize("source", ["env", "secret-file"])
@pytest.mark.parametrize("mode", ["echo-content", "echo-html", "echo-json"])
def test_a_reply_quoting_the_request_headers_leaks_no_part_of_the_key(
    server: FakeJudgeServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    source: str,
    mode: str,
) -> None:
    server.mode = mode
    if source == "env":
        monkeypatch.setenv("JUDGE_KEY", KEY)
        llm_judge = judge.LLMJudge(server.base_url, "m", api_key_env="JUDGE_KEY")
    else:
        monkeypatch.delenv("JUDGE_KEY", raising=False)
        (tmp_path / "api-key").write_text(f"{KEY}\n")
        llm_judge = judge.LLMJudge(server.base_url, "m", api_key_env="JUDGE_KEY", api_key_file=tmp_path / "api-key")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(judge.JudgeError) as raised:
        ask(llm_judge, "Tahoe", "Tahoe")
    assert server.authorizations == [f"Bearer {KEY}"]  # the key was sent, and quoted back
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    logged = [record.getMessage() for record in caplog.records] + [record.exc_text or "" for record in caplog.records]
    assert_no_fragment(KEY, exception_texts(raised.value) + logged + [repr(llm_judge)])


@pytest.mark.parametrize(
    "failure",
    [RuntimeError(f"proxy said: Bearer {KEY}"), KeyError(KEY), ValueError("x" * 595 + KEY), OSError(KEY * 3)],
    ids=repr,
)
def test_any_exception_type_leaves_the_judge_scrubbed(
    key_env: str, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    llm_judge = judge.LLMJudge("http://127.0.0.1:1/v1", "m", api_key_env=key_env)

    async def fail(**_: Any) -> None:
        raise failure

    monkeypatch.setattr(llm_judge._client.chat.completions, "create", fail)
    with pytest.raises(judge.JudgeError, match=type(failure).__name__) as raised:
        ask(llm_judge, "Tahoe", "Tahoe")
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert_no_fragment(KEY, exception_texts(raised.value))


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AGENTRUN_JUDGE_API_KEY", raising=False)
    spec = JudgeSpec(kind=JudgeKind.LLM, endpoint="http://127.0.0.1:1/v1", model="m")
    with pytest.raises(judge.JudgeError, match="AGENTRUN_JUDGE_API_KEY"):
        judge.make_judge(spec)
    with pytest.raises(judge.JudgeError, match="api-key.*AGENTRUN_JUDGE_API_KEY"):
        judge.make_judge(spec, api_key_file=tmp_path / "api-key")


def test_make_judge_picks_the_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(judge.make_judge(JudgeSpec()), judge.DeterministicJudge)
    monkeypatch.setenv("AGENTRUN_JUDGE_API_KEY", KEY)
    llm_judge = judge.make_judge(JudgeSpec(kind=JudgeKind.LLM, endpoint="http://127.0.0.1:1/v1", model="m"))
    assert isinstance(llm_judge, judge.LLMJudge) and llm_judge.model == "m"
    asyncio.run(llm_judge.aclose())
