"""The transcript of one episode, on hand-built trajectories: everything a reader needs is there, and
long or hostile text is cut and escaped so that every line fits and prints."""

from __future__ import annotations

import json
from datetime import datetime

from agentrun.evaluator import transcript
from agentrun.mailbox.records import Scenario
from agentrun.rollout.trajectory import EpisodeRecord, RewardRecord, Timings, ToolCallRecord, Trajectory, Turn

RIGHT = "<27634674.1075947354945.JavaMail.evans@thyme>"
OTHER = "<65953607.1075894709883.JavaMail.evans@thyme>"
QUESTION = "What's the invoice number on the Glencore invoice for Puffin?"
BODY = "\n".join(f"line {n} of the email" for n in range(1, 31))  # 30 lines: more than a transcript shows


def scenario(scenario_id: int = 3) -> Scenario:
    return Scenario(id=scenario_id, question=QUESTION, answer="EN-007843", message_ids=(RIGHT,),
                    inbox_address="gary.schmidt@enron.com", query_date=datetime(2000, 10, 14), split="test")


def trajectory(scenario_id: int = 3, question: str = QUESTION, *, correct: bool = False, content: str | None = None,
               body: str = BODY) -> Trajectory:
    """A three-turn episode: search (two hits, the right email among them), read the right email, answer
    (`EN-007843` when correct, else `A-007168`), with `content` as the first turn's text."""
    answer = "EN-007843" if correct else "A-007168"
    calls = [ToolCallRecord(id="c1", name="search_emails", arguments='{"keywords": ["glencore", "invoice"]}'),
             ToolCallRecord(id="c2", name="read_email", arguments=json.dumps({"message_id": RIGHT})),
             ToolCallRecord(id="c3", name="return_final_answer",
                            arguments=json.dumps({"answer": answer, "sources": [RIGHT]}))]
    hits = [{"message_id": OTHER, "snippet": "RE: <b>Glencore</b> <b>invoice</b>"},
            {"message_id": RIGHT, "snippet": "The <b>Glencore</b> invoice number for Puffin is EN-007843."}]
    email = {"message_id": RIGHT, "subject": "Glencore invoice", "from_address": "brittany.navarro@enron.com",
             "to": ["gary.schmidt@enron.com"], "cc": [], "bcc": [], "date": "2000-10-03 08:35:02", "body": body}
    results = [hits, email, {"status": "final answer recorded"}]
    messages: list[dict[str, object]] = [{"role": "system", "content": "You are an email search agent."},
                                         {"role": "user", "content": question}]
    turns = []
    for number, (call, result) in enumerate(zip(calls, results, strict=True)):
        text = content if number == 0 else None
        turns.append(Turn(prompt_messages=len(messages), content=text, tool_calls=[call], finish_reason="tool_calls",
                          model="step-000003", latency_seconds=0.05))
        messages.append({"role": "assistant", "content": text, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}]})
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    episode = EpisodeRecord(turns=3, answer=answer, sources=[RIGHT], error=None, error_detail=None,
                            found_right_email=True, read_right_email=True, read_invalid_id=False, ran_out_of_turns=False)
    reward = RewardRecord(total=1.52 if correct else -0.6, outcome="correct" if correct else "wrong", partial=0.4,
                          found_right_email=True, read_right_email=True, no_invalid_read=True, sources_correct=True)
    return Trajectory(scenario_id=scenario_id, question=question, model="step-000003", messages=messages, turns=turns,
                      episode=episode, answer_correct=correct, reward=reward, timings=Timings(wall_seconds=0.2))


def test_a_transcript_shows_the_question_each_call_and_result_the_answers_and_the_reward() -> None:
    text = transcript.render(trajectory(content="Let me search first."), scenario())
    assert QUESTION in text and "gary.schmidt@enron.com, asked on 2000-10-14" in text
    assert "Let me search first." in text
    assert 'search_emails(keywords=["glencore", "invoice"])' in text
    assert "-> 2 results (* = a reference email)" in text
    hit_lines = [line for line in text.splitlines() if "JavaMail" in line and "Glencore" in line]
    assert hit_lines == [f"       {OTHER}  RE: Glencore invoice",  # one line per hit, highlighting removed,
                         f"     * {RIGHT}  The Glencore invoice number for Puffin is E..."]  # cut at 100
    assert f'read_email(message_id="{RIGHT}")' in text
    assert f"-> email *{RIGHT}" in text and "subject: Glencore invoice" in text
    assert "from: brittany.navarro@enron.com; to gary.schmidt@enron.com" in text
    assert "| line 8 of the email" in text and "line 9 of the email" not in text  # the body's first lines only
    assert f"[... {len(chr(10).join(BODY.splitlines()[8:])):,} more characters]" in text  # lines 9-30
    assert f'return_final_answer(answer="A-007168", sources=["{RIGHT}"])' in text
    assert "-> final answer recorded" in text
    assert f"answer      A-007168\nsources     *{RIGHT}\nreference   EN-007843\nref. emails {RIGHT}" in text
    assert "judged      wrong" in text
    assert "reward      -0.600 (outcome wrong; partial credit 0.40, added unless correct)" in text
    for check in ("the right email appeared in a search", "the right email was read", "no read of a non-existent id",
                  "sources correct"):
        assert f"[x] {check}" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_full_limits_cut_nothing() -> None:
    text = transcript.render(trajectory(), scenario(), transcript.FULL)
    assert "line 30 of the email" in text and "more characters" not in text


def test_a_megabyte_of_model_text_is_cut_to_a_few_lines_with_the_count_left_out() -> None:
    text = transcript.render(trajectory(content="x" * 1_000_000), scenario())
    shown = 8 * 98  # eight lines of the 98 columns after the two-space indent
    assert f"[... {1_000_000 - shown:,} more characters]" in text
    assert len(text) < 5000 and max(len(line) for line in text.splitlines()) <= 100


def test_long_arguments_go_one_per_line_and_are_cut() -> None:
    long = trajectory()
    call = long.turns[0].tool_calls[0]
    long.turns[0].tool_calls[0] = call.model_copy(update={"arguments": json.dumps({"keywords": ["word"] * 400})})
    text = transcript.render(long, scenario())
    assert "  search_emails(\n      keywords=[" in text and "more characters]" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_control_characters_and_lone_surrogates_are_escaped() -> None:
    text = transcript.render(trajectory(content="\x1b[2Jgone \ud83d", question="why\x07?"), scenario())
    assert "\\x1b[2Jgone \\ud83d" in text and "why\\x07?" in text
    assert "\x1b" not in text and "\x07" not in text
    text.encode("utf-8")  # printable by any UTF-8 terminal: no lone surrogate left


def test_without_a_scenario_the_reference_is_said_to_be_unavailable() -> None:
    text = transcript.render(trajectory(correct=True))
    assert "reference   (not available: the dataset's scenarios were not found)" in text
    assert "judged      correct" in text and "(* = a reference email)" not in text


def test_a_failed_episode_shows_its_exception_and_no_reward() -> None:
    failed = trajectory().model_copy(update={"reward": None, "answer_correct": None, "exception": "TimeoutError: slow"})
    text = transcript.render(failed, scenario())
    assert "| failed |" in text.splitlines()[1]
    assert "failed      TimeoutError: slow" in text and "no answer to judge" in text and "reward  " not in text


def test_a_call_not_executed_and_a_turn_without_calls_are_named() -> None:
    odd = trajectory()
    odd.turns[0].tool_calls.append(ToolCallRecord(id="never", name="read_email", arguments="{not json"))
    odd.turns.append(Turn(prompt_messages=len(odd.messages), content="I give up", finish_reason="length",
                          model="step-000002", latency_seconds=1.0))
    text = transcript.render(odd, scenario())
    assert "  read_email with arguments that are not a JSON object:\n      {not json" in text
    assert "(not executed: an earlier call of this turn ended the episode)" in text
    assert "-- turn 4 (length, 1.00 s, served by step-000002) " in text
    assert "  I give up\n  (no tool call in this turn)" in text
