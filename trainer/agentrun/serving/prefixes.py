"""Prefix caching: the keys and values of recent sequences, reused by prompts that start the same way.

An agent's prompts repeat themselves: every episode starts with the same system prompt and tool schemas
(~750 tokens for the email agent), and turn k+1 of an episode re-sends turn k's prompt and completion.
Recomputing those positions dominated serving time on CPU (prefill of a 766-token prompt costs as much
as ~20 decode steps), so, like vLLM's automatic prefix caching, the engine copies the longest cached
prefix into a new sequence's slot and prefills only the rest. Entries are keyed by the adapter that
computed them (and its load serial: a reloaded adapter is a different function) and evicted least
recently used beyond a byte budget.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

Key = tuple[str | None, int]  # (adapter or None for the base model, the adapter's load serial)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    return len(os.path.commonprefix([list(a), list(b)]))


@dataclass(frozen=True)
class Entry:
    key: Key
    tokens: tuple[int, ...]
    kv: list[torch.Tensor]  # SlotCache.save layout

    @property
    def nbytes(self) -> int:
        return sum(tensor.numel() * tensor.element_size() for tensor in self.kv)


class PrefixStore:
    def __init__(self, budget_bytes: int) -> None:
        self._budget = budget_bytes
        self._entries: OrderedDict[tuple[Key, tuple[int, ...]], Entry] = OrderedDict()  # least recent first
        self._bytes = 0

    def add(self, entry: Entry) -> None:
        if entry.nbytes > self._budget:
            return
        old = self._entries.pop((entry.key, entry.tokens), None)
        self._bytes += entry.nbytes - (old.nbytes if old else 0)
        self._entries[(entry.key, entry.tokens)] = entry
        while self._bytes > self._budget:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.nbytes

    def longest(self, key: Key, prompt: Sequence[int]) -> tuple[int, Entry | None]:
        """The entry sharing the longest prefix with `prompt` under `key`, and that length."""
        best, found = 0, None
        for entry in self._entries.values():
            if entry.key == key and (length := common_prefix(entry.tokens, prompt)) > best:
                best, found = length, entry
        if found is not None:
            self._entries.move_to_end((found.key, found.tokens))
        return best, found
