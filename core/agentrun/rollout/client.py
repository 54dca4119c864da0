"""Sampling trajectories: the agent loop over an OpenAI-compatible chat-completions server.

Each turn sends the conversation and the tools, executes the returned tool calls in the email
environment, and appends the results, until the episode ends; the answer is then judged and scored.
The server is vLLM (or the embedded or scripted server, which speak the same contract): the client asks
for vLLM's `return_token_ids` and for logprobs, so the learner gets the generated tokens as sampled.

Choices made here, and why:
- Concurrency is limited per trajectory, not per request: a trajectory holds one of
  `settings.concurrency` slots from its first request to its last. Per-request limiting would start
  every trajectory at once and interleave them, so each would take longer, the server's prefix cache
  would evict conversations between their turns, and a batch would keep all its conversations in
  memory. The environment's work between turns (milliseconds of SQLite) is negligible next to a
  generation; the judge, which may call a remote model, runs after the slot is released.
- Retries are here, not in the HTTP layer: exponential backoff with jitter on transport errors,
  timeouts, 429 and 5xx, never on other 4xx (a malformed request or an unknown adapter does not get
  better), and every retry is counted on the trajectory and on the turn it led to.
- A failure inside one trajectory (retries exhausted, a server error, an exception from the environment
  or judge) is recorded on that trajectory (`exception`, no reward) and never cancels the others.
  Infrastructure faults are not the policy's fault, so they get no reward (not -2): the learner drops
  failed trajectories (`Trajectory.failed`) and reports how many there were.
- Requests go through `chat.ChatEndpoint` (aiohttp, a small typed reply model), not the OpenAI SDK:
  it measured 0.65-0.85 ms of client CPU per request where the SDK over httpx2 took 4.6 ms (numbers and
  alternatives in `chat`). A turn is built with `Turn.model_construct`: its values come from the
  validated reply, and validating them again (thousands of token ids) cost ~0.3 ms per request.
- The environment runs in worker threads (`asyncio.to_thread`, ~70 us per call): a search measured
  0.5-1.6 ms on 2k-20k-email synthetic mailboxes and building an environment ~2 ms, but the first
  search of an inbox on a connection builds that inbox's table, which takes much longer on real Enron
  inboxes; inline, such a stall would hold up every other trajectory, while in a thread SQLite runs
  beside the event loop (it releases the GIL). The benchmark measured the same client CPU per request
  either way, and shorter batches with threads.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from tqdm import tqdm

from agentrun.environment import reward as rewards
from agentrun.environment.email_env import EmailEnvironment
from agentrun.environment.episode import Episode, ToolCall
from agentrun.environment.judge import Judge
from agentrun.mailbox import queries
from agentrun.mailbox.records import Scenario
from agentrun.rollout import chat
from agentrun.wire import Completion
from agentrun.rollout.trajectory import (
    EpisodeRecord,
    RewardRecord,
    Timings,
    ToolCallRecord,
    Trajectory,
    Turn,
    Usage,
)
from agentrun.spec.models import EnvironmentSpec, RewardSpec, RolloutSpec

MAX_BACKOFF_SECONDS = 30.0


class ServedByError(RuntimeError):
    """Rollouts were served by a model other than the adapter the step expected."""


def check_served_by(trajectories: Iterable[Trajectory], expected_model: str) -> None:
    """Raise ServedByError if any turn of any trajectory was served by a model other than `expected_model`.

    The usual cause is silent base-model sampling: the adapter was not loaded (or a router sent the
    request elsewhere) and the server answered with another model, so a step would train on rollouts
    of a policy it is not updating.
    """
    wrong: dict[str, list[str]] = {}
    for trajectory in trajectories:
        for name in trajectory.served_by - {expected_model}:
            wrong.setdefault(name, []).append(f"{trajectory.scenario_id}/{trajectory.sample_index}")
    if wrong:
        found = "; ".join(
            f"{name!r} served {len(ids)} (scenario/sample {', '.join(ids[:5])})" for name, ids in wrong.items()
        )
        raise ServedByError(
            f"rollouts were expected from {expected_model!r} but {found}: is the adapter loaded on every "
            f"server replica, and is the request's model name the adapter's name?"
        )


def backoff_seconds(attempt: int, base: float) -> float:
    """Exponential backoff with equal jitter: a random delay in [d/2, d] with d = base * 2^(attempt-1)."""
    delay = min(MAX_BACKOFF_SECONDS, base * 2 ** (attempt - 1))
    return random.uniform(delay / 2, delay)


@dataclass
class _Draft:
    """A trajectory while it is being sampled."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    retries: int = 0
    env_seconds: float = 0.0


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _turn(completion: Completion, prompt_messages: int, latency: float, retries: int) -> Turn:
    choice = completion.choices[0]
    logprobs = choice.logprobs.content if choice.logprobs is not None else None
    usage = completion.usage
    return Turn.model_construct(
        prompt_messages=prompt_messages,
        content=choice.message.content,
        tool_calls=[
            ToolCallRecord.model_construct(id=call.id, name=call.function.name, arguments=call.function.arguments)
            for call in choice.message.tool_calls or ()
            if call.type == "function"
        ],
        finish_reason=choice.finish_reason,
        model=completion.model,
        token_ids=choice.token_ids,
        logprobs=[entry.logprob for entry in logprobs] if logprobs is not None else None,
        prompt_token_ids=completion.prompt_token_ids,
        usage=Usage.model_construct(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
        if usage is not None
        else None,
        latency_seconds=latency,
        retries=retries,
    )


def _assistant_message(turn: Turn) -> dict[str, Any]:
    """The assistant message to send back in later requests (no empty `tool_calls`: OpenAI rejects it)."""
    message: dict[str, Any] = {"role": "assistant", "content": turn.content}
    if turn.tool_calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in turn.tool_calls
        ]
    return message


def _episode_record(episode: Episode) -> EpisodeRecord:
    return EpisodeRecord(
        turns=episode.turns,
        answer=episode.answer,
        sources=list(episode.sources),
        error=episode.error.value if episode.error is not None else None,
        error_detail=episode.error_detail,
        found_right_email=episode.found_right_email,
        read_right_email=episode.read_right_email,
        read_invalid_id=episode.read_invalid_id,
        ran_out_of_turns=episode.ran_out_of_turns,
    )


def _reward_record(reward: rewards.Reward) -> RewardRecord:
    return RewardRecord(
        total=reward.total,
        outcome=reward.outcome.value,
        partial=reward.partial,
        found_right_email=reward.found_right_email,
        read_right_email=reward.read_right_email,
        no_invalid_read=reward.no_invalid_read,
        sources_correct=reward.sources_correct,
    )


class RolloutClient:
    """Samples trajectories of the email task from one OpenAI-compatible server; an async context manager.

    `reward` holds the weights episodes are scored with (ART·E's by default); `backoff_base_seconds` is the
    first retry's delay (tests shorten it).
    """

    def __init__(
        self,
        base_url: str,
        settings: RolloutSpec,
        env_settings: EnvironmentSpec,
        mailbox: queries.Mailbox,
        judge: Judge,
        api_key: str = "EMPTY",
        *,
        reward: RewardSpec = rewards.ARTE,
        backoff_base_seconds: float = 0.5,
    ) -> None:
        self._settings = settings
        self._env_settings = env_settings
        self._mailbox = mailbox
        self._judge = judge
        self._reward = reward
        self._backoff_base = backoff_base_seconds
        self._slots = asyncio.Semaphore(settings.concurrency)
        # One connection per concurrent trajectory, so a request never waits for the pool.
        self._endpoint = chat.ChatEndpoint(base_url, api_key, settings.request_timeout_seconds, settings.concurrency)

    async def aclose(self) -> None:
        await self._endpoint.aclose()

    async def __aenter__(self) -> RolloutClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def run_groups(
        self,
        scenarios: Sequence[Scenario],
        model: str,
        group_size: int,
        *,
        temperature: float | None = None,
        seed: int | None = None,
        progress: bool = False,
    ) -> list[list[Trajectory]]:
        """`group_size` trajectories per scenario, all sharing the client's concurrency limit.

        With a `seed`, trajectory k of the batch (k = scenario index * group_size + sample index) is
        sampled with seed `seed + k`, so samples of a group differ and a batch replays exactly.
        """
        with tqdm(total=len(scenarios) * group_size, disable=not progress, unit="traj") as bar:

            async def one(index: int) -> Trajectory:
                group, sample = divmod(index, group_size)
                trajectory = await self.run(
                    scenarios[group],
                    model,
                    temperature=temperature,
                    seed=None if seed is None else seed + index,
                    group_index=group,
                    sample_index=sample,
                )
                bar.update()
                return trajectory

            flat = await asyncio.gather(*(one(index) for index in range(len(scenarios) * group_size)))
        return [flat[start : start + group_size] for start in range(0, len(flat), group_size)]

    async def run(
        self,
        scenario: Scenario,
        model: str,
        *,
        temperature: float | None = None,
        seed: int | None = None,
        group_index: int = 0,
        sample_index: int = 0,
    ) -> Trajectory:
        """Sample one trajectory; never raises for a failure of its own (see `Trajectory.exception`)."""
        draft, env, exception = _Draft(), None, None
        queued_at = time.perf_counter()
        async with self._slots:
            started = time.perf_counter()
            try:
                env = await asyncio.to_thread(EmailEnvironment, self._mailbox, scenario, self._env_settings)
                await self._play(env, draft, model, temperature, seed)
            except Exception as error:  # Exception, not BaseException: cancellation still propagates
                exception = _describe(error)
        answer_correct, reward, judge_seconds = None, None, 0.0
        if exception is None and env is not None:
            judged_at = time.perf_counter()
            try:
                answer_correct, reward = await self._score(scenario, env.episode)
            except Exception as error:
                exception = _describe(error)
            judge_seconds = time.perf_counter() - judged_at
        return Trajectory(
            scenario_id=scenario.id,
            question=scenario.question,
            model=model,
            group_index=group_index,
            sample_index=sample_index,
            seed=seed,
            messages=draft.messages,
            turns=draft.turns,
            episode=_episode_record(env.episode) if env is not None else None,
            answer_correct=answer_correct,
            reward=reward,
            retries=draft.retries,
            timings=Timings(
                wall_seconds=time.perf_counter() - started,
                queued_seconds=started - queued_at,
                env_seconds=draft.env_seconds,
                judge_seconds=judge_seconds,
            ),
            exception=exception,
        )

    async def _score(self, scenario: Scenario, episode: Episode) -> tuple[bool | None, RewardRecord]:
        answer_correct = None
        if episode.error is None and episode.answer is not None and not rewards.is_dont_know(episode.answer):
            answer_correct = await self._judge.is_correct(scenario.question, scenario.answer, episode.answer)
        return answer_correct, _reward_record(rewards.score(episode, answer_correct, self._reward))

    async def _play(
        self, env: EmailEnvironment, draft: _Draft, model: str, temperature: float | None, seed: int | None
    ) -> None:
        draft.messages = env.initial_messages()
        request: dict[str, Any] = {
            "model": model,
            "messages": draft.messages,
            "tools": env.tools,
            "tool_choice": "auto",
            "temperature": self._settings.temperature if temperature is None else temperature,
            "top_p": self._settings.top_p,
            "max_tokens": self._env_settings.max_new_tokens,
            "logprobs": True,
            "return_token_ids": True,  # vLLM: prompt_token_ids at the top level, token_ids per choice
        }
        if seed is not None:
            request["seed"] = seed
        while not env.episode.done:
            turn = await self._complete(request, draft)
            draft.turns.append(turn)
            draft.messages.append(_assistant_message(turn))
            calls = [ToolCall(id=call.id, name=call.name, arguments=call.arguments) for call in turn.tool_calls]
            started = time.perf_counter()
            draft.messages += await asyncio.to_thread(env.respond, turn.content, calls)
            draft.env_seconds += time.perf_counter() - started

    async def _complete(self, request: dict[str, Any], draft: _Draft) -> Turn:
        """One chat completion with retries; `request["messages"]` is the live conversation."""
        prompt_messages = len(draft.messages)
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                completion = await self._endpoint.complete(request)
                return _turn(completion, prompt_messages, time.perf_counter() - started, attempt)
            except chat.ChatRequestError as error:
                if attempt >= self._settings.max_retries or not error.retryable:
                    raise
            attempt += 1
            draft.retries += 1
            await asyncio.sleep(backoff_seconds(attempt, self._backoff_base))
