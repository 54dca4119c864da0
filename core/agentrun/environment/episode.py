"""What happened in one episode of the email task: the facts the reward is computed from.

The environment fills an `Episode` as the agent acts; the reward (`reward.score`) and the trajectory
record read it. Tool errors are classified here because the reward treats each kind differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from agentrun.mailbox.records import Scenario


class ToolErrorKind(StrEnum):
    """Why an assistant turn could not be executed; each kind ends the episode with its own penalty."""

    UNPARSEABLE = "unparseable"  # no tool call in the turn, or its arguments are not a JSON object
    UNKNOWN_TOOL = "unknown_tool"  # a tool name the environment does not offer
    BAD_ARGUMENTS = "bad_arguments"  # a known tool with missing, extra or mistyped arguments


@dataclass(frozen=True)
class ToolCall:
    """One tool call as the server returned it: `arguments` is the raw JSON text, not yet parsed."""

    id: str
    name: str
    arguments: str


@dataclass
class Episode:
    scenario: Scenario
    max_turns: int
    turns: int = 0
    searched_ids: set[str] = field(default_factory=set)  # every message id any search returned
    read_ids: set[str] = field(default_factory=set)  # every existing message id that was read
    read_invalid_id: bool = False  # read an id that does not exist for the agent: none, another inbox's, or a later one
    error: ToolErrorKind | None = None
    error_detail: str | None = None
    answer: str | None = None  # set by return_final_answer
    sources: tuple[str, ...] = ()

    @property
    def answered(self) -> bool:
        return self.answer is not None

    @property
    def done(self) -> bool:
        return self.error is not None or self.answered or self.turns >= self.max_turns

    @property
    def ran_out_of_turns(self) -> bool:
        return not self.answered and self.error is None and self.turns >= self.max_turns

    @property
    def found_right_email(self) -> bool:
        return bool(self.searched_ids & set(self.scenario.message_ids))

    @property
    def read_right_email(self) -> bool:
        return bool(self.read_ids & set(self.scenario.message_ids))

    @property
    def sources_correct(self) -> bool:
        """Every email the answer rests on is cited (extra citations cost reward through 1/num_sources)."""
        return self.answered and set(self.scenario.message_ids) <= set(self.sources)
