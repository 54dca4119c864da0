"""The copy curriculum that comes before SFT for a model trained from random initialisation.

DESIGN §9: from random init, SFT on demonstrations learns the tool-call boilerplate quickly but never
learns to copy message ids, names and answers out of the context, so its episodes fall apart; a few
hundred steps of "copy these 2-6 mailbox-like strings into a JSON list" first unlock it. The strings
are drawn from the dataset itself (message ids, addresses, subjects, answers), so the model learns to
copy exactly the kinds of spans it will have to copy in episodes. Rows are chats trained through the
same chat template and assistant-only mask as the demonstrations, and in their context: each row opens
with the system message and tools of a demonstration. Measured (docs/BENCHMARKS.md): a model taught to
copy in bare two-message chats copied 4 of 24 rows exactly there and 0 of 24 behind the agent's ~300-token
system prompt and tools, where every copy of an episode happens; the shared prompt is computed once per
batch (agentrun.trainer.prefix), so the context costs little.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from random import Random
from typing import Any

from agentrun import storage
from agentrun.mailbox import schema, writer
from agentrun.mailbox.records import Scenario

MIN_STRINGS, MAX_STRINGS = 2, 6
POOL_EMAILS = 5000  # emails sampled for the pools: plenty of distinct strings, a fast query
INSTRUCTION = "Copy these strings into a JSON list, in order:"


def string_pools(dataset_dir: Path, scenarios: Sequence[Scenario] | None = None) -> list[list[str]]:
    """Kinds of strings an agent copies: message ids, addresses, subjects and the reference answers of
    `scenarios` (every train scenario's by default; a run's bootstrap passes only the ones it learns
    from, so that it never copies a validation question's answer)."""
    conn = schema.open_readonly(dataset_dir / schema.EMAILS_DB)
    try:
        rows = conn.execute(
            "SELECT message_id, from_address, subject FROM emails ORDER BY id LIMIT ?", (POOL_EMAILS,)
        ).fetchall()
    finally:
        conn.close()
    if scenarios is None:
        scenarios = [s for s in writer.load_scenarios(storage.scenarios_file(dataset_dir)) if s.split == "train"]
    answers = [s.answer for s in scenarios]
    pools = [sorted({row[k] for row in rows if row[k]}) for k in range(3)] + [sorted(set(answers))]
    return [pool for pool in pools if pool]


def copy_row(pools: list[list[str]], rng: Random, system: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One chat: the user lists 2-6 strings of mixed kinds, the assistant returns them as a JSON list;
    after the `system` message, if one is given."""
    strings = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(MIN_STRINGS, MAX_STRINGS))]
    return [*([system] if system else []),
            {"role": "user", "content": "\n".join([INSTRUCTION, *strings])},
            {"role": "assistant", "content": json.dumps(strings, ensure_ascii=False)}]
