"""A key/value cache with one slot per running sequence, each slot at its own length.

transformers' own caches keep every row of a batch at the same position, which rules out continuous
batching (a sequence joins while others are half-way through). Here each layer has one buffer
(slots, kv_heads, capacity, head_dim); the running sequences always occupy slots 0..B-1 (a retiring
sequence's slot is refilled by moving the last one in), so a decode step reads the prefix views
`[:B, :, :kv_len]` without copying, and writes each row's new key at that row's own position. Rows
attend only to their own positions through the mask the engine builds. The attention layers see this
object through the one method they call, `update`.
"""

from __future__ import annotations

from typing import Any

import torch

INITIAL_CAPACITY = 256


class SlotCache:
    def __init__(self, layers: int, slots: int, kv_heads: int, head_dim: int, dtype: torch.dtype) -> None:
        shape = (slots, kv_heads, INITIAL_CAPACITY, head_dim)
        self._keys = [torch.zeros(shape, dtype=dtype) for _ in range(layers)]
        self._values = [torch.zeros(shape, dtype=dtype) for _ in range(layers)]
        self._slot = 0  # prefill target
        self._start = 0  # first position the prefill writes
        self._positions: torch.Tensor | None = None  # decode: the write position of each row (B,)
        self._length = 0  # how many positions the current forward attends to

    @property
    def capacity(self) -> int:
        return self._keys[0].shape[2]

    def reserve(self, length: int) -> None:
        """Grow every buffer (doubling) so that `length` positions fit."""
        if length <= self.capacity:
            return
        capacity = self.capacity
        while capacity < length:
            capacity *= 2
        for buffers in (self._keys, self._values):
            for index, old in enumerate(buffers):
                new = old.new_zeros((old.shape[0], old.shape[1], capacity, old.shape[3]))
                new[:, :, : old.shape[2]] = old
                buffers[index] = new

    def for_prefill(self, slot: int, start: int, end: int) -> SlotCache:
        """The next forward writes positions start..end-1 of `slot` (one prompt, its first `start`
        positions already in place) and attends to positions 0..end-1."""
        self.reserve(end)
        self._slot, self._start, self._positions, self._length = slot, start, None, end
        return self

    def for_decode(self, positions: torch.Tensor) -> SlotCache:
        """The next forward writes one token per row i of slots 0..B-1 at `positions[i]` (B,)."""
        self._length = int(positions.max()) + 1
        self.reserve(self._length)
        self._positions = positions
        return self

    def update(
        self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, **_: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's keys/values (B, kv_heads, T, head_dim); return the ones to attend to."""
        keys, values = self._keys[layer_idx], self._values[layer_idx]
        if self._positions is None:
            keys[self._slot, :, self._start : self._length] = key[0]
            values[self._slot, :, self._start : self._length] = value[0]
            rows = slice(self._slot, self._slot + 1)
        else:
            batch = torch.arange(key.shape[0])
            keys[batch, :, self._positions] = key[:, :, 0]
            values[batch, :, self._positions] = value[:, :, 0]
            rows = slice(0, key.shape[0])
        return keys[rows, :, : self._length], values[rows, :, : self._length]

    def move(self, source: int, target: int, length: int) -> None:
        """Copy the first `length` positions of slot `source` into slot `target`."""
        for buffers in (self._keys, self._values):
            for buffer in buffers:
                buffer[target, :, :length] = buffer[source, :, :length]

    def save(self, slot: int, length: int) -> list[torch.Tensor]:
        """A copy of the first `length` positions of `slot`: keys then values of each layer, each
        (kv_heads, length, head_dim)."""
        return [buffer[slot, :, :length].clone() for buffers in (self._keys, self._values) for buffer in buffers]

    def restore(self, saved: list[torch.Tensor], slot: int, length: int) -> None:
        """Put the first `length` positions of a `save`d copy into `slot`."""
        self.reserve(length)
        for buffer, copy in zip([*self._keys, *self._values], saved, strict=True):
            buffer[slot, :, :length] = copy[:, :length]
