"""The environment: prompt, execution of turns, imposed bounds and the classification of bad calls."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agentrun.environment import tools
from agentrun.environment.email_env import EmailEnvironment, EpisodeOverError
from agentrun.environment.episode import ToolCall, ToolErrorKind
from agentrun.environment.reward import PARTIAL_CREDIT, Reward, score
from agentrun.mailbox import queries
from agentrun.mailbox.records import Scenario
from agentrun.spec.models import EnvironmentSpec
from tests.environment.conftest import INBOX


def call(name: str, arguments: Any, call_id: str = "c1") -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments=arguments if isinstance(arguments, str) else json.dumps(arguments))


def results(messages: list[dict[str, Any]]) -> list[Any]:
    assert all(message["role"] == "tool" for message in messages)
    return [json.loads(message["content"]) for message in messages]


@pytest.fixture
def env(mailbox: queries.Mailbox, scenario: Scenario) -> EmailEnvironment:
    return EmailEnvironment(mailbox, scenario)


def test_initial_messages_state_inbox_date_turns_and_question(env: EmailEnvironment) -> None:
    system, user = env.initial_messages()
    assert system["role"] == "system"
    assert INBOX in system["content"] and "2001-05-01" in system["content"]
    assert "10 turns" in system["content"] and "I don't know" in system["content"]
    assert user == {"role": "user", "content": "Where is the ski trip?"}


def test_tools_bound_max_results_by_setting(mailbox: queries.Mailbox, scenario: Scenario) -> None:
    env = EmailEnvironment(mailbox, scenario, EnvironmentSpec(max_search_results=2))
    (search,) = [tool for tool in env.tools if tool["function"]["name"] == "search_emails"]
    assert search["function"]["parameters"]["properties"]["max_results"]["maximum"] == 2
    (hits,) = results(env.respond(None, [call("search_emails", {"keywords": ["Tahoe"]})]))
    assert [hit["message_id"] for hit in hits] == ["m1", "m5"]


def test_tool_schemas_have_the_art_e_names_and_arguments() -> None:
    shapes = {t["function"]["name"]: set(t["function"]["parameters"]["properties"]) for t in tools.TOOL_SCHEMAS}
    assert shapes == {
        "search_emails": {"keywords", "from_addr", "to_addr", "sent_after", "sent_before", "max_results"},
        "read_email": {"message_id"},
        "return_final_answer": {"answer", "sources"},
    }


def test_search_imposes_query_date_and_records_found_ids(env: EmailEnvironment) -> None:
    (hits,) = results(env.respond(None, [call("search_emails", {"keywords": ["Tahoe"]})]))
    assert [hit["message_id"] for hit in hits] == ["m1", "m5", "m3"]  # m4 is after the query date
    assert set(hits[0]) == {"message_id", "snippet"}
    assert env.episode.searched_ids == {"m1", "m5", "m3"} and env.episode.found_right_email
    assert env.episode.turns == 1 and not env.episode.done


def test_later_sent_before_is_clamped_and_earlier_is_kept(env: EmailEnvironment) -> None:
    later, earlier = results(
        env.respond(
            None,
            [
                call("search_emails", {"keywords": ["Tahoe"], "sent_before": "2002-01-01"}, "a"),
                call("search_emails", {"keywords": ["Tahoe"], "sent_before": "2001-02-15"}, "b"),
            ],
        )
    )
    assert [hit["message_id"] for hit in later] == ["m1", "m5", "m3"]
    assert [hit["message_id"] for hit in earlier] == ["m5", "m3"]


def test_read_returns_recipients_and_records_the_read(env: EmailEnvironment) -> None:
    messages = env.respond(None, [call("read_email", {"message_id": "m1"}, "r1")])
    assert messages[0]["tool_call_id"] == "r1"
    (email,) = results(messages)
    assert email["to"] == [INBOX, "zoe@enron.com"] and email["cc"] == ["carol@enron.com"]
    assert email["bcc"] == ["dave@enron.com"] and email["from_address"] == "bob@enron.com"
    assert env.episode.read_ids == {"m1"} and env.episode.read_right_email


@pytest.mark.parametrize("message_id", ["m6", "nope", "\ud800 José"])
def test_invalid_read_is_an_error_object_not_a_tool_error(env: EmailEnvironment, message_id: str) -> None:
    (message,) = env.respond(None, [call("read_email", {"message_id": message_id})])
    message["content"].encode("utf-8")
    (result,) = results([message])
    assert "error" in result
    assert env.episode.read_invalid_id and env.episode.error is None and not env.episode.done


def test_read_hides_emails_sent_on_or_after_the_query_date(env: EmailEnvironment) -> None:
    # m4 is alice's but sent in June, after the question: like m6 (not alice's), it does not exist for the agent
    answers = [results(env.respond(None, [call("read_email", {"message_id": i})])) for i in ("m4", "m6", "m5x")]
    assert answers == [[{"error": f"no email with message_id {i!r} in this inbox"}] for i in ("m4", "m6", "m5x")]
    assert env.episode.read_invalid_id and env.episode.read_ids == set()


def test_read_and_search_share_the_date_bound(mailbox: queries.Mailbox, scenario: Scenario) -> None:
    # asked at the very second m1 was sent: m1 is neither found nor read (the bound is exclusive)
    env = EmailEnvironment(mailbox, scenario.model_copy(update={"query_date": datetime(2001, 3, 1, 9, 30)}))
    search, read = call("search_emails", {"keywords": ["Tahoe"]}, "s"), call("read_email", {"message_id": "m1"}, "r")
    hits, email = results(env.respond(None, [search, read]))
    assert [hit["message_id"] for hit in hits] == ["m5", "m3"] and "error" in email
    assert not env.episode.found_right_email and not env.episode.read_right_email and env.episode.read_invalid_id


def test_a_future_read_costs_what_a_non_existent_id_costs(mailbox: queries.Mailbox, scenario: Scenario) -> None:
    def reward_after_reading(message_id: str) -> Reward:
        env = EmailEnvironment(mailbox, scenario)
        reads = [call("read_email", {"message_id": "m1"}, "right"), call("read_email", {"message_id": message_id})]
        env.respond(None, reads)
        env.respond(None, [call("return_final_answer", {"answer": "Aspen", "sources": ["m1"]})])
        return score(env.episode, answer_correct=False)

    future, missing, valid = (reward_after_reading(i) for i in ("m4", "m404", "m5"))
    assert future == missing and not future.no_invalid_read
    assert valid.no_invalid_read and valid.total == pytest.approx(future.total + PARTIAL_CREDIT)


_HUGE = 1_000_000


@pytest.mark.parametrize(
    ("tool_call", "shown"),
    [
        (call("read_email", {"message_id": "m1", "k" * _HUGE: 1}), "'kkkk"),
        (call("read_email", {"message_id": "m1", "\n" * _HUGE: 1}), "'\\n\\n"),
        (call("read_email", {"message_id": "m1"} | {f"k{i}": 1 for i in range(10_000)}), "and 9995 more problems"),
        (call("return_final_answer", {"answer": "x", "sources": [1] * 10_000}), "and 9995 more problems"),
        (call("search_emails", {"keywords": ["x"], "sent_after": "2001" * _HUGE}), "invalid date"),
        (call("search_emails", {"keywords": ["x"] * _HUGE}), "at most 20 items"),
        (call("x" * _HUGE, {}), "unknown tool 'xxx"),
        (call("read_email", {"message_id": "\ud800" * _HUGE}), "no email with message_id '\\ud800"),
    ],
)
def test_echoes_of_the_model_s_text_are_capped(env: EmailEnvironment, tool_call: ToolCall, shown: str) -> None:
    (message,) = env.respond(None, [tool_call])
    message["content"].encode("utf-8")
    (result,) = results([message])
    assert len(message["content"]) < 1500 and shown in result["error"]


def test_a_turn_of_huge_text_without_a_call_is_recorded_capped(env: EmailEnvironment) -> None:
    assert env.respond("\ud83d" * _HUGE, []) == []
    assert env.episode.error == ToolErrorKind.UNPARSEABLE and len(env.episode.error_detail or "") < 1500


def test_a_lone_surrogate_in_a_keyword_is_searched_as_a_blank(env: EmailEnvironment) -> None:
    (hits,) = results(env.respond(None, [call("search_emails", {"keywords": ["Tahoe", "\ud83d", "snow\udc00"]})]))
    assert [hit["message_id"] for hit in hits] == ["m1"] and env.episode.error is None


def test_final_answer_ends_and_ignores_later_calls(env: EmailEnvironment) -> None:
    messages = env.respond(
        None,
        [
            call("return_final_answer", {"answer": "Tahoe", "sources": ["m1"]}, "f"),
            call("read_email", {"message_id": "m1"}, "late"),
        ],
    )
    assert [m["tool_call_id"] for m in messages] == ["f"]
    assert env.episode.answer == "Tahoe" and env.episode.sources == ("m1",)
    assert env.episode.done and env.episode.read_ids == set()
    with pytest.raises(EpisodeOverError, match="is over"):
        env.respond(None, [call("read_email", {"message_id": "m1"})])


def test_running_out_of_turns_ends_the_episode(mailbox: queries.Mailbox, scenario: Scenario) -> None:
    env = EmailEnvironment(mailbox, scenario, EnvironmentSpec(max_turns=2))
    for _ in range(2):
        env.respond(None, [call("search_emails", {"keywords": ["budget"]})])
    assert env.episode.ran_out_of_turns and env.episode.done


def test_turn_without_tool_call_is_unparseable(env: EmailEnvironment) -> None:
    assert env.respond('<tool_call>{"name": "read_email", ', []) == []
    assert env.episode.error == ToolErrorKind.UNPARSEABLE and env.episode.done
    assert "no tool call" in (env.episode.error_detail or "")


@pytest.mark.parametrize(
    ("tool_call", "kind", "detail"),
    [
        (call("read_email", '{"message_id": "m1"'), ToolErrorKind.UNPARSEABLE, "not valid JSON"),
        (call("read_email", '["m1"]'), ToolErrorKind.UNPARSEABLE, "JSON object"),
        (call("read_email", ""), ToolErrorKind.UNPARSEABLE, "not valid JSON"),
        (call("read_email", "[" * 100_000), ToolErrorKind.UNPARSEABLE, "not valid JSON"),
        (call("delete_email", {"message_id": "m1"}), ToolErrorKind.UNKNOWN_TOOL, "unknown tool 'delete_email'"),
        (call("read_email", {}), ToolErrorKind.BAD_ARGUMENTS, "message_id: Field required"),
        (call("read_email", {"message_id": 1}), ToolErrorKind.BAD_ARGUMENTS, "message_id"),
        (call("read_email", {"message_id": "m1", "inbox": "x"}), ToolErrorKind.BAD_ARGUMENTS, "inbox: Extra"),
        (call("read_email", '{"message_id": "m1", "\\ud800": 1}'), ToolErrorKind.BAD_ARGUMENTS, "unicode string"),
        (call("search_emails", {"keywords": "Tahoe"}), ToolErrorKind.BAD_ARGUMENTS, "keywords"),
        (call("search_emails", {"keywords": []}), ToolErrorKind.BAD_ARGUMENTS, "at least 1"),
        (call("search_emails", {"keywords": ["x"], "max_results": 11}), ToolErrorKind.BAD_ARGUMENTS, "max_results"),
        (call("search_emails", {"keywords": ["x"], "max_results": "5"}), ToolErrorKind.BAD_ARGUMENTS, "max_results"),
        (call("search_emails", {"keywords": ["x"], "sent_after": "May 1"}), ToolErrorKind.BAD_ARGUMENTS, "YYYY-MM-DD"),
        (call("search_emails", {"keywords": ["x" * 201]}), ToolErrorKind.BAD_ARGUMENTS, "keywords.0"),
        (call("return_final_answer", {"answer": "Tahoe"}), ToolErrorKind.BAD_ARGUMENTS, "sources: Field required"),
    ],
)
def test_bad_calls_end_the_episode_with_their_kind(
    env: EmailEnvironment, tool_call: ToolCall, kind: ToolErrorKind, detail: str
) -> None:
    messages = env.respond(None, [tool_call, call("read_email", {"message_id": "m1"}, "after")])
    assert [m["tool_call_id"] for m in messages] == [tool_call.id]
    messages[0]["content"].encode("utf-8")
    (result,) = results(messages)
    assert detail in result["error"] and result["error"] == env.episode.error_detail
    assert env.episode.error == kind and env.episode.done and env.episode.read_ids == set()


# Model output at its worst: FTS5 syntax, quotes, control characters, surrogates, emoji, long text.
_nasty_text = st.one_of(
    st.text(),
    st.lists(st.sampled_from(['"', "*", "^", "-", ":", "(", ")", " ", "NEAR", "AND", "OR", "NOT", "Tahoe"])).map(
        "".join
    ),
    st.text(alphabet=st.characters(codec=None, exclude_categories=())),
    st.lists(st.sampled_from(["\ud83d", "\udc00", "\ud800\udc00", "Tahoe", "snow", " "])).map("".join),  # surrogates
    st.just("Tahoe " * 33),  # long, within MAX_KEYWORD_CHARS (the bound itself: test_bad_calls_end_the_episode)
)


@settings(
    max_examples=int(os.environ.get("AGENTRUN_FUZZ_EXAMPLES", "300")),  # raise it for a longer local run
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(keywords=st.lists(_nasty_text, min_size=1, max_size=6), from_addr=st.none() | _nasty_text)
def test_any_keywords_give_a_tool_message_never_a_sqlite_error(
    mailbox: queries.Mailbox, scenario: Scenario, keywords: list[str], from_addr: str | None
) -> None:
    env = EmailEnvironment(mailbox, scenario)
    arguments: dict[str, Any] = {"keywords": keywords} | ({"from_addr": from_addr} if from_addr is not None else {})
    (message,) = env.respond(None, [call("search_emails", arguments)])
    result = json.loads(message["content"])
    message["content"].encode("utf-8")  # sendable back to the server as it is
    # only the schema's bounds refuse keywords, never their text (lone surrogates included)
    assert isinstance(result, list) or env.episode.error == ToolErrorKind.BAD_ARGUMENTS
    within_bounds = 0 < len(keywords) <= tools.MAX_KEYWORDS and all(len(k) <= tools.MAX_KEYWORD_CHARS for k in keywords)
    assert isinstance(result, list) == within_bounds
    event(("results" if result else "no results") if isinstance(result, list) else "bad arguments")
