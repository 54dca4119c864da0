"""Answer judges: is an agent's answer the reference answer? Deterministic by default, an LLM optionally.

The deterministic judge compares normalised token sequences, and must not be gamed: an agent rewarded
for "the reference appears somewhere in my answer" learns to list every candidate. So the reference
must make up at least half of the answer (see `DeterministicJudge`).

The LLM judge's API key is read from an environment variable or a mounted Secret file and is never
logged, never part of a repr, and scrubbed from any error text before it is raised. Any reply text can
quote it (a proxy's error page, answered with 200, echoes the request headers), and so can any
exception on the way, so every failure leaves `is_correct` as one JudgeError built from scrubbed text,
scrubbed before it is cut short (a cut could split the key and hide it from the scrub), and with no
original exception attached.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from pathlib import Path
from typing import Any, Protocol

import openai

from agentrun.spec.models import JudgeKind, JudgeSpec

# A number keeps its inner separators (4:30, 1,200.50, 10.0.0.1); letters and digits split (4:30pm).
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[^\W\d_]+")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DOTTED_ABBREVIATION = re.compile(r"\b[^\W\d_](?:\.[^\W\d_])+\b\.?")  # p.m., a.m, u.s.a. (not j.doe)
_APOSTROPHES = str.maketrans("", "", "'\u2018\u2019`")
_ARTICLES = frozenset({"a", "an", "the"})


class JudgeError(Exception):
    """The judge could not reach a verdict (endpoint failure, unreadable reply, missing key)."""


class Judge(Protocol):
    async def is_correct(self, question: str, reference: str, answer: str) -> bool: ...


def normalise(text: str) -> list[str]:
    """Tokens for comparison: NFKC, casefold, no diacritics, punctuation dropped, numbers canonical,
    a leading article dropped. "$1,200.00" -> ["1200"]; "4:30 p.m." -> ["4:30", "pm"]."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = unicodedata.normalize("NFKC", "".join(ch for ch in text if not unicodedata.combining(ch)))
    text = _DOTTED_ABBREVIATION.sub(lambda m: m.group().replace(".", ""), text.translate(_APOSTROPHES))
    tokens = [part for token in _TOKEN.findall(text) for part in _canonical(token)]
    return tokens[1:] if tokens[:1] and tokens[0] in _ARTICLES else tokens


def _canonical(token: str) -> list[str]:
    """A number in one spelling: thousands commas removed, trailing decimal zeros and leading zeros
    dropped; commas that are not thousands separators separate list items ("1,2" -> "1", "2")."""
    if not token[0].isdigit():
        return [token]
    if _THOUSANDS.fullmatch(token):
        token = token.replace(",", "")
    if "," in token:
        return [part for piece in token.split(",") for part in _canonical(piece)]
    if re.fullmatch(r"\d+\.\d+", token):
        token = token.rstrip("0").rstrip(".")
    return [re.sub(r"^0+(?=\d)", "", token)]


def _contains(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


class DeterministicJudge:
    """Accepts when the normalised reference is a whole-token span of the normalised answer AND the
    answer has at most twice as many tokens as the reference.

    The length rule is the guard against listing candidates: an answer may add context ("at 4:30 pm")
    but at most doubles its chances by naming alternatives. Verbose correct answers are rejected, which
    teaches the agent to answer concisely; paraphrases need the LLM judge.
    """

    async def is_correct(self, question: str, reference: str, answer: str) -> bool:
        return self.matches(reference, answer)

    @staticmethod
    def matches(reference: str, answer: str) -> bool:
        ref, ans = normalise(reference), normalise(answer)
        return bool(ref) and len(ans) <= 2 * len(ref) and _contains(ans, ref)


JUDGE_PROMPT = """\
You grade answers to questions about a user's emails. Given the question, the reference answer and the \
agent's answer, accept the agent's answer if it states the same fact as the reference (wording, format \
and extra context may differ). Reject it if it is different, incomplete, hedged between several \
candidates, or says it does not know. Reply with a JSON object {"accept": true|false, "reason": "..."}."""

_VERDICT_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"accept": {"type": "boolean"}, "reason": {"type": "string"}},
            "required": ["accept", "reason"],
            "additionalProperties": False,
        },
    },
}


def load_api_key(env_var: str, key_file: Path | None = None) -> str:
    """The key from the mounted Secret file if given, else from `env_var`; JudgeError if neither has one."""
    if key_file is not None and key_file.is_file():
        key = key_file.read_text().strip()
    else:
        key = os.environ.get(env_var, "").strip()
    if not key:
        where = f"the file {key_file} or " if key_file is not None else ""
        raise JudgeError(f"no API key for the LLM judge: set {where}the environment variable {env_var}")
    return key


class LLMJudge:
    """Asks a model behind any OpenAI-compatible endpoint for a structured accept/reject verdict."""

    def __init__(
        self,
        endpoint: str,
        model: str,
        api_key_env: str = JudgeSpec().api_key_env,
        api_key_file: Path | None = None,
        timeout_seconds: float = 60.0,
    ) -> None:
        self.endpoint = endpoint
        self.model = model
        self._key = load_api_key(api_key_env, api_key_file)
        self._client = openai.AsyncOpenAI(base_url=endpoint, api_key=self._key, timeout=timeout_seconds)

    def __repr__(self) -> str:
        return f"LLMJudge(endpoint={self.endpoint!r}, model={self.model!r})"

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> LLMJudge:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def is_correct(self, question: str, reference: str, answer: str) -> bool:
        case = json.dumps({"question": question, "reference_answer": reference, "agent_answer": answer})
        try:
            response = await self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": JUDGE_PROMPT}, {"role": "user", "content": case}],
                response_format=_VERDICT_FORMAT,  # type: ignore[arg-type]
                temperature=0.0,
            )
            content = (response.choices[0].message.content if response.choices else None) or ""
            verdict = _verdict(content)
        except Exception as error:  # every type: any exception's text may quote the reply or the request
            problem = self._scrub(f"judge request to {self.endpoint} failed: {_describe(error)}")[:600]
        else:
            if verdict is not None:
                return verdict
            problem = f"judge reply has no {{\"accept\": true|false}} object: {self._scrub(content)[:200]!r}"
        # Raised outside the except block, so that the original exception, which may hold the key, is not
        # even the JudgeError's __context__.
        raise JudgeError(problem)

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***")


def _describe(error: Exception) -> str:
    # An OpenAIError's message says what went wrong ("Error code: 401 - ..."); for any other type the
    # type's name is needed to make sense of the message.
    return str(error) if isinstance(error, openai.OpenAIError) else f"{type(error).__name__}: {error}"


def _verdict(content: str) -> bool | None:
    """`accept` from the reply: the whole content as JSON, else the first JSON object inside it
    (servers that ignore `response_format` wrap it in prose or a code fence); None if there is none."""
    decoder = json.JSONDecoder()
    for start in [match.start() for match in re.finditer(r"\{", content)]:
        try:
            value: Any = decoder.raw_decode(content, start)[0]
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("accept"), bool):
            return value["accept"]
    return None


def make_judge(spec: JudgeSpec, api_key_file: Path | None = None) -> Judge:
    """The judge a run's spec asks for; `api_key_file` is where a mounted Secret holds the key, if any."""
    if spec.kind == JudgeKind.LLM:
        assert spec.endpoint and spec.model  # JudgeSpec validates this
        return LLMJudge(spec.endpoint, spec.model, api_key_env=spec.api_key_env, api_key_file=api_key_file)
    return DeterministicJudge()
