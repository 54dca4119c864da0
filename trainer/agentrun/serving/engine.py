"""Continuous batching: one worker thread generates for every request in flight, in shared forward passes.

Each iteration of the loop (a "step") admits waiting sequences up to `max_batch` (each prompt is
prefilled on its own into a free cache slot, which also yields its first token), then runs one decode
forward over all running sequences (one new token each, each at its own position, each with its own
adapter: `Adapters.route`), samples every row with that sequence's own
generator, and retires the sequences that finished. A request that arrives mid-generation joins at the
next step instead of waiting for the batch to drain. A prompt that starts like a running or recently
finished sequence (same adapter) copies those positions' keys and values instead of recomputing them
(`prefixes`). This is the simplest correct version of what vLLM does: no paged memory, no chunked
prefill, no preemption (a sequence holds its slot until it ends).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from agentrun.serving import prefixes, sampling
from agentrun.serving.adapters import Adapters
from agentrun.serving.kvcache import SlotCache
from agentrun.serving.metrics import ServerMetrics

log = logging.getLogger(__name__)

MIN_REUSE = 8  # shorter shared prefixes are recomputed (a masked prefill is not free either)


@dataclass(eq=False)
class Job:
    """One sequence to generate (one choice of a request); the engine fills in the results."""

    prompt_ids: list[int]
    max_new_tokens: int
    params: sampling.SamplingParams
    generator: torch.Generator
    adapter: str | None  # None: the base model
    stop: tuple[str, ...]
    done: Callable[[Job], None]  # called once on the engine thread when the job ends
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[list[tuple[int, float]]] = field(default_factory=list)
    finish_reason: str | None = None  # stop | length | abort (cancelled, shutdown) | error
    stop_reason: str | None = None  # the stop string that ended it
    cancelled: bool = False  # set by the request's handler when its client went away
    ended: bool = False
    cache_key: prefixes.Key = (None, 0)  # whose keys/values its slot holds (set at admission)
    submitted: float = field(default_factory=time.monotonic)


@dataclass
class EngineStats:
    steps: int = 0
    max_batch: int = 0  # the most sequences that ever shared one decode forward
    reused_tokens: int = 0  # prompt positions copied from the prefix cache instead of computed


class Engine:
    def __init__(
        self,
        adapters: Adapters,
        cache: SlotCache,
        prefix_store: prefixes.PrefixStore,
        *,
        layer_types: Sequence[str],
        eos_ids: frozenset[int],
        decode: Callable[[list[int]], str],
        max_batch: int,
        metrics: ServerMetrics,
    ) -> None:
        self.adapters = adapters
        self.stats = EngineStats()
        self._cache = cache
        self._prefixes = prefix_store
        self._layer_types = tuple(dict.fromkeys(layer_types))
        self._eos_ids = eos_ids
        self._decode = decode
        self._max_batch = max_batch
        self._metrics = metrics
        self._waiting: deque[Job] = deque()
        self._running: list[Job] = []  # the job in cache slot i
        self._lengths: list[int] = []  # positions of slot i already in the cache
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="agentrun-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the current step, end every job with finish_reason "abort", and join the thread."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout)

    def submit(self, job: Job) -> None:
        """Queue a job (any thread); its adapter is pinned until the job ends."""
        if job.adapter is not None:
            self.adapters.acquire(job.adapter)
        with self._wake:
            self._waiting.append(job)
            self._metrics.waiting.set(len(self._waiting))
            self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not (self._waiting or self._running or self._stopping):
                    self._wake.wait()
                if self._stopping:
                    break
                room = self._max_batch - len(self._running)
                admitted = [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]
                self._metrics.waiting.set(len(self._waiting))
            with self.adapters.lock, torch.inference_mode():
                try:
                    self._step(admitted)
                except Exception:  # noqa: BLE001 - a failed forward fails its requests, not the server
                    log.exception("generation step failed; ending the requests in it")
                    self._fail_all(admitted)
            self._metrics.running.set(len(self._running))
            # The cache's slots hold max_batch sequences of up to its current capacity (it grows on demand).
            self._metrics.kv_cache_usage.set(sum(self._lengths) / (self._max_batch * self._cache.capacity))
        with self.adapters.lock:
            for job in [*self._running, *self._waiting]:
                job.finish_reason = "abort"
                self._end(job)

    def _step(self, admitted: list[Job]) -> None:
        decoding = len(self._running)  # sequences that already have a token to feed
        for job in admitted:
            if job.cancelled:
                job.finish_reason = "abort"
                self._end(job)
                continue
            self._prefill(job)
        if decoding:
            self._decode_step(decoding)
        self.stats.steps += 1
        self._retire()

    def _forward(self, jobs: Sequence[Job], input_ids: torch.Tensor, position_ids: torch.Tensor,
                 mask: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
        """Logits of the last position of each row: (B, T) ids -> (B, V)."""
        extra = self.adapters.route([job.adapter for job in jobs])
        output = self.adapters.model(
            input_ids=input_ids,
            position_ids=position_ids,
            attention_mask=dict.fromkeys(self._layer_types, mask),  # a dict: transformers uses it as is
            cache=self._cache,
            use_cache=False,
            logits_to_keep=1,
            **extra,
        )
        return output.logits[:, -1]  # (B, V)

    def _prefill(self, job: Job) -> None:
        slot, length = len(self._running), len(job.prompt_ids)
        job.cache_key = (job.adapter, self.adapters.serial(job.adapter))
        start = self._reuse(job, slot)
        self._cache.for_prefill(slot, start, length)
        ids = torch.tensor([job.prompt_ids[start:]])  # (1, T - start)
        positions = torch.arange(start, length)  # (T - start,)
        # Causal: sdpa's own flag when nothing is reused, else query i sees keys 0..start+i.
        mask = (torch.arange(length)[None, :] <= positions[:, None])[None, None] if start else None  # (1, 1, T-s, T)
        logits = self._forward([job], ids, positions[None], mask)
        self._running.append(job)
        self._lengths.append(length)
        self._metrics.prompt_tokens.inc(length)
        self._emit(job, logits[0])

    def _reuse(self, job: Job, slot: int) -> int:
        """Copy into `slot` the longest prefix of the job's prompt whose keys/values are at hand (a
        running sequence's slot or the prefix store), leaving at least one position to compute."""
        best, source = 0, None
        for other_slot, other in enumerate(self._running):
            if other.cache_key == job.cache_key:
                known = (other.prompt_ids + other.token_ids)[: self._lengths[other_slot]]
                if (length := prefixes.common_prefix(known, job.prompt_ids)) > best:
                    best, source = length, other_slot
        stored, entry = self._prefixes.longest(job.cache_key, job.prompt_ids)
        reuse = min(max(best, stored), len(job.prompt_ids) - 1)
        if reuse < MIN_REUSE:
            return 0
        if entry is not None and stored >= best:
            self._cache.restore(entry.kv, slot, reuse)
        elif source is not None:
            self._cache.move(source, slot, reuse)
        self.stats.reused_tokens += reuse
        return reuse

    def _decode_step(self, count: int) -> None:
        jobs = self._running[:count]
        positions = torch.tensor(self._lengths[:count])  # (B,) where each row's last token goes
        self._cache.for_decode(positions)
        kv_length = int(positions.max()) + 1
        mask = (torch.arange(kv_length)[None, :] <= positions[:, None])[:, None, None, :]  # (B, 1, 1, K)
        ids = torch.tensor([[job.token_ids[-1]] for job in jobs])  # (B, 1)
        logits = self._forward(jobs, ids, positions[:, None], mask)
        self.stats.max_batch = max(self.stats.max_batch, count)
        for slot, job in enumerate(jobs):
            self._lengths[slot] += 1
            self._emit(job, logits[slot])

    def _emit(self, job: Job, logits: torch.Tensor) -> None:
        """Sample one token for `job` from its logits (V,), record it, and decide whether it ended."""
        token = sampling.sample(logits, job.params, job.generator)
        if job.params.top_logprobs is not None:
            logprobs = sampling.raw_logprobs(logits)
            job.logprobs.append(float(logprobs[token]))
            if job.params.top_logprobs:
                values, ids = logprobs.topk(job.params.top_logprobs)
                job.top_logprobs.append(list(zip(ids.tolist(), values.tolist(), strict=True)))
        if not job.token_ids:
            self._metrics.time_to_first_token.observe(time.monotonic() - job.submitted)
        job.token_ids.append(token)
        self._metrics.generation_tokens.inc()
        if token in self._eos_ids:
            job.finish_reason = "stop"
        elif (hit := self._stop_string(job)) is not None:
            job.finish_reason, job.stop_reason = "stop", hit
        elif len(job.token_ids) >= job.max_new_tokens:
            job.finish_reason = "length"
        elif job.cancelled:
            job.finish_reason = "abort"

    def _stop_string(self, job: Job) -> str | None:
        if not job.stop:
            return None
        window = max(len(stop) for stop in job.stop) + 4  # tokens: each is at least one character
        tail = self._decode(job.token_ids[-window:])
        return next((stop for stop in job.stop if stop in tail), None)

    def _retire(self) -> None:
        """End finished jobs; the last running sequence moves into each freed slot (slots stay 0..B-1)."""
        for slot in reversed(range(len(self._running))):
            job = self._running[slot]
            if job.finish_reason is None:
                continue
            length = self._lengths[slot]
            if job.finish_reason in ("stop", "length"):
                tokens = tuple((job.prompt_ids + job.token_ids)[:length])
                self._prefixes.add(prefixes.Entry(job.cache_key, tokens, self._cache.save(slot, length)))
            last = len(self._running) - 1
            if slot != last:
                self._cache.move(last, slot, self._lengths[last])
                self._running[slot], self._lengths[slot] = self._running[last], self._lengths[last]
            self._running.pop()
            self._lengths.pop()
            self._end(job)

    def _fail_all(self, admitted: list[Job]) -> None:
        for job in [*admitted, *self._running]:
            job.finish_reason = "error"
            self._end(job)
        self._running.clear()
        self._lengths.clear()

    def _end(self, job: Job) -> None:
        if job.ended:
            return
        job.ended = True
        if job.adapter is not None:
            self.adapters.release(job.adapter)
        self._metrics.e2e_latency.observe(time.monotonic() - job.submitted)
        job.done(job)
