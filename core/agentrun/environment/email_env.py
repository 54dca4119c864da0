"""One episode of the email research task: the prompt, the execution of each assistant turn, the facts.

The environment is the only place where the model's tool calls touch the mailbox. It imposes what the
model must not choose (the inbox, and no email sent on or after the question's date), executes calls in
order, and records in an `Episode` everything the reward needs. It is synchronous: a search is a few
milliseconds of SQLite, and the rollout client decides which thread runs it.

The date bound holds for reads too, a deliberate difference from the public ART·E code, which bounds
only searches: there `read_email` returns any email of the inbox by id, so an agent that guesses or
remembers an id can read the future. Here an email sent on or after the question's date does not exist
for the agent: reading it gets the same answer as a non-existent id or another inbox's email, and costs
the same partial credit ("no read of a non-existent id").

Whatever a model writes, `respond` answers with tool messages (a bad call is a tool error the reward
penalises) and raises nothing but `EpisodeOverError`; what it echoes of the model's text is escaped and
cut short, so a message stays small and UTF-8 encodable.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from agentrun.environment import tools
from agentrun.environment.episode import Episode, ToolCall, ToolErrorKind
from agentrun.mailbox import queries, writer
from agentrun.mailbox.records import Scenario
from agentrun.spec.models import EnvironmentSpec

SYSTEM_PROMPT = """\
You are an email search agent. You are given a user query and a list of tools you can use to search \
the user's email. Use the tools to search the user's emails and find the answer to the user's query. \
You may take up to {max_turns} turns to find the answer, so if your first search doesn't find the \
answer, you can try with different keywords.

When you have found the answer, call return_final_answer with a short answer and the message_ids of \
the emails you used as sources. If you cannot find the answer, return "I don't know" as the answer.

User's email address is {inbox}
Today's date is {today}"""

Message = dict[str, Any]


class EpisodeOverError(RuntimeError):
    """`respond` was called after the episode ended (answer, tool error or out of turns)."""


class EmailEnvironment:
    """Runs one scenario: builds the prompt, executes each assistant turn, fills `episode`."""

    def __init__(
        self, mailbox: queries.Mailbox, scenario: Scenario, settings: EnvironmentSpec = EnvironmentSpec()
    ) -> None:
        self._mailbox = mailbox
        self._settings = settings
        self._episode = Episode(scenario=scenario, max_turns=settings.max_turns)
        self._sent_before = writer.date_text(scenario.query_date)
        self.tools = tools.tool_schemas(settings.max_search_results)

    @property
    def episode(self) -> Episode:
        return self._episode

    def initial_messages(self) -> list[Message]:
        scenario = self._episode.scenario
        system = SYSTEM_PROMPT.format(
            max_turns=self._settings.max_turns,
            inbox=scenario.inbox_address,
            today=writer.utc_naive(scenario.query_date).date().isoformat(),
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": scenario.question}]

    def respond(self, content: str | None, tool_calls: list[ToolCall]) -> list[Message]:
        """Apply one assistant turn and return the tool messages to append to the conversation.

        A turn without tool calls is UNPARSEABLE (the server hands back text it could not parse as a tool
        call as `content`); it returns no message, since there is no call id to answer, and the episode
        records the error. Any tool error ends the episode after a tool message describing it; calls
        after a final answer or an error in the same turn are not executed.
        """
        episode = self._episode
        if episode.done:
            raise EpisodeOverError(f"episode of scenario {episode.scenario.id} is over; start a new environment")
        episode.turns += 1
        if not tool_calls:
            preview = (content or "").strip()[:200]
            self._fail(ToolErrorKind.UNPARSEABLE, f"the turn contained no tool call (text: {preview!r})")
            return []
        messages = []
        for call in tool_calls:
            try:
                result = self._execute(tools.parse_call(call, self._settings.max_search_results))
            except tools.ToolError as error:
                self._fail(error.kind, error.detail)
                result = {"error": error.detail}
            # Plain UTF-8 rather than \u escapes: fewer tokens for the model; anything echoed from the
            # model's input is repr()-escaped first, so no lone surrogate can make the text unencodable.
            content = json.dumps(result, ensure_ascii=False)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
            if episode.error is not None or episode.answered:
                break
        return messages

    def _fail(self, kind: ToolErrorKind, detail: str) -> None:
        self._episode.error = kind
        self._episode.error_detail = detail

    def _execute(self, arguments: tools.Arguments) -> Any:
        """Run one validated call and return its JSON-able result."""
        episode = self._episode
        inbox = episode.scenario.inbox_address
        match arguments:
            case tools.SearchEmails():
                hits = self._mailbox.search(
                    inbox,
                    arguments.keywords,
                    from_addr=arguments.from_addr,
                    to_addr=arguments.to_addr,
                    sent_after=arguments.sent_after,
                    sent_before=min(arguments.sent_before or self._sent_before, self._sent_before),
                    max_results=arguments.max_results or self._settings.max_search_results,
                )
                episode.searched_ids.update(hit.message_id for hit in hits)
                return [dataclasses.asdict(hit) for hit in hits]
            case tools.ReadEmail():
                email = self._mailbox.read(arguments.message_id, inbox, sent_before=self._sent_before)
                if email is None:
                    episode.read_invalid_id = True
                    return {"error": f"no email with message_id {arguments.message_id[:200]!r} in this inbox"}
                episode.read_ids.add(email.message_id)
                return dataclasses.asdict(email)
            case tools.ReturnFinalAnswer():
                episode.answer = arguments.answer
                episode.sources = tuple(arguments.sources)
                return {"status": "final answer recorded"}
