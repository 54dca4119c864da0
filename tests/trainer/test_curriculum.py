"""The copy curriculum's rows: 2-6 strings of the dataset, returned as a JSON list in order."""

from __future__ import annotations

import json
from pathlib import Path
from random import Random

from agentrun.trainer import curriculum


def test_rows_copy_dataset_strings_in_order(dataset: Path) -> None:
    pools = curriculum.string_pools(dataset)
    assert len(pools) == 4 and all(pools)
    assert any(s.startswith("<") and s.endswith(">") for s in pools[0])  # message ids
    rng = Random(0)
    for _ in range(50):
        user, assistant = curriculum.copy_row(pools, rng)
        strings = json.loads(assistant["content"])
        assert curriculum.MIN_STRINGS <= len(strings) <= curriculum.MAX_STRINGS
        assert user["content"].split("\n") == [curriculum.INSTRUCTION, *strings]
        assert all(any(s in pool for pool in pools) for s in strings)


def test_a_row_in_context_follows_the_system_message(dataset: Path) -> None:
    system = {"role": "system", "content": "You are an email search agent."}
    row = curriculum.copy_row(curriculum.string_pools(dataset), Random(1), system)
    assert [m["role"] for m in row] == ["system", "user", "assistant"] and row[0] is system
    assert row[1]["content"].startswith(curriculum.INSTRUCTION)
