"""The SFT loop: padding and labels, a loss that falls, the full-model and LoRA outputs, and CLI errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from agentrun import demonstrations  # noqa: E402
from agentrun.trainer import cli, masking, sft  # noqa: E402

SHOWN = [
    demonstrations.Demonstration(
        [{"role": "user", "content": f"Copy {word}"}, {"role": "assistant", "content": f'["{word}"]'}], []
    )
    for word in ("<4821.1075@thyme>", "Arthur Holland", "A-007168")
]
FAST = sft.SFTSettings(steps=12, batch_size=3, lr=3e-3, progress=False, log_every=0, precision="fp32")


def test_batches_are_right_padded_with_ignored_labels() -> None:
    short, long = masking.Encoded([5, 6], [False, True]), masking.Encoded([7, 8, 9], [True, False, True])
    batch = sft.batch_tensors([short, long], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 0], [7, 8, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert batch["labels"].tolist() == [[sft.IGNORE, 6, sft.IGNORE], [7, sft.IGNORE, 9]]


def test_length_grouping_keeps_the_rows_and_pads_less() -> None:
    from random import Random

    rows = [masking.Encoded([1] * length, [True] * length) for length in Random(0).choices(range(1, 300), k=64)]
    regrouped = sft.length_grouped(sft.random_batches(rows, 4, Random(1)), Random(2))
    batches = [next(regrouped) for _ in range(sft.GROUPED_BATCHES)]
    plain = sft.random_batches(rows, 4, Random(1))
    originals = [next(plain) for _ in range(sft.GROUPED_BATCHES)]
    assert sorted(id(r) for b in batches for r in b) == sorted(id(r) for b in originals for r in b)

    def padding(batches: list[list[masking.Encoded]]) -> int:
        return sum(len(b) * max(len(r.ids) for r in b) - sum(len(r.ids) for r in b) for b in batches)

    assert padding(batches) < padding(originals) / 2


def test_a_few_steps_reduce_the_loss(tiny_dir: Path) -> None:
    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_dir), AutoTokenizer.from_pretrained(tiny_dir)
    report = sft.run_sft(model, tokenizer, SHOWN, FAST)
    phase = report.phases["sft"]
    assert phase["last_loss"] < phase["first_loss"] - 1.0
    assert "curriculum" not in report.phases


def test_curriculum_runs_first_and_needs_a_dataset(tiny_dir: Path, dataset: Path) -> None:
    from agentrun.trainer import curriculum

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_dir), AutoTokenizer.from_pretrained(tiny_dir)
    settings = sft.SFTSettings(steps=1, batch_size=1, curriculum_steps=2, curriculum_batch_size=2, progress=False,
                               log_every=0, precision="fp32")
    with pytest.raises(sft.SFTError, match="dataset"):
        sft.run_sft(model, tokenizer, SHOWN, settings)
    report = sft.run_sft(model, tokenizer, SHOWN, settings, curriculum_pools=curriculum.string_pools(dataset))
    assert list(report.phases) == ["curriculum", "sft"]


def test_copy_rows_open_with_a_demonstrations_system_message_and_tools(tiny_dir: Path, dataset: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy skill is learned where it is used: behind the agent's system prompt and tools."""
    from agentrun.trainer import curriculum

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    shown = demonstrations.oracle(dataset, "train", limit=3)
    seen: dict[str, list[masking.Encoded]] = {}

    def first_batch(model: object, batches: Any, phase: sft.Phase, pad_id: int, report: sft.Report,
                    settings: sft.SFTSettings) -> None:  # instead of training: keep the phase's first batch
        seen[phase.name] = next(batches)
        report.record(phase.name, 0.0, 0.0, 0.0, 0, 0)

    monkeypatch.setattr(sft, "train_phase", first_batch)
    settings = sft.SFTSettings(steps=1, batch_size=1, curriculum_steps=1, curriculum_batch_size=4, progress=False)
    sft.run_sft(AutoModelForCausalLM.from_pretrained(tiny_dir), tokenizer, shown, settings,
                curriculum_pools=curriculum.string_pools(dataset))
    systems = {d.messages[0]["content"] for d in shown}
    for row in seen["curriculum"]:
        text = tokenizer.decode(row.ids)
        assert text.startswith("<|im_start|>system\n# Tools\nsearch_emails(")
        assert any(system in text for system in systems) and curriculum.INSTRUCTION in text


def test_language_phase_trains_every_token_before_sft(tiny_dir: Path) -> None:
    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_dir), AutoTokenizer.from_pretrained(tiny_dir)
    settings = sft.SFTSettings(steps=1, batch_size=3, language_steps=1, progress=False, log_every=0, precision="fp32")
    report = sft.run_sft(model, tokenizer, SHOWN, settings)
    assert list(report.phases) == ["language", "sft"]
    conversation = masking.Encoded([4, 5, 6, 7], [False, False, True, True])
    assert sft.every_token([conversation]) == [masking.Encoded([4, 5, 6, 7], [False, True, True, True])]


def test_full_model_output_loads_back(tiny_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_dir), AutoTokenizer.from_pretrained(tiny_dir)
    sft.run_sft(model, tokenizer, SHOWN, sft.SFTSettings(steps=1, batch_size=1, progress=False, log_every=0))
    sft.save(model, tokenizer, tmp_path / "out", "builtin:tiny", lora=False)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert torch.equal(reloaded.model.embed_tokens.weight, model.model.embed_tokens.weight)
    assert AutoTokenizer.from_pretrained(tmp_path / "out").chat_template == tokenizer.chat_template


def test_lora_output_is_an_adapter_for_the_named_base(tiny_dir: Path, tmp_path: Path) -> None:
    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_dir), AutoTokenizer.from_pretrained(tiny_dir)
    model = sft.add_lora(model, rank=4)
    sft.run_sft(model, tokenizer, SHOWN, sft.SFTSettings(steps=1, batch_size=1, progress=False, log_every=0))
    sft.save(model, tokenizer, tmp_path / "adapter", "Qwen/Qwen3-4B", lora=True)
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == "Qwen/Qwen3-4B"
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "adapter" / "model.safetensors").exists()


@pytest.mark.parametrize(("arguments", "message"), [
    (["--demonstrations", "absent.jsonl", "--curriculum-steps", "0"], "no demonstrations file"),
    (["--demonstrations", "demos.jsonl"], "pass --dataset too, or --curriculum-steps 0"),
    (["--demonstrations", "demos.jsonl", "--base", "builtin:huge"], "unknown builtin model 'builtin:huge'"),
    (["--demonstrations", "demos.jsonl", "--base", "no/such-model-dir"], "cannot load base model"),
    ([], "pass --dataset (the oracle's demonstrations) or --demonstrations FILE"),
])
def test_cli_errors_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    Path("demos.jsonl").write_text(json.dumps({"messages": SHOWN[0].messages}) + "\n")
    result = CliRunner().invoke(cli.sft, [*arguments, "--out", "out"])
    assert result.exit_code != 0
    assert message in result.output


def test_cli_trains_and_saves(tiny_dir: Path, tmp_path: Path) -> None:
    demos = tmp_path / "demos.jsonl"
    demos.write_text("".join(json.dumps({"messages": d.messages}) + "\n" for d in SHOWN))
    result = CliRunner().invoke(cli.sft, ["--base", str(tiny_dir), "--demonstrations", str(demos), "--steps", "2",
                                          "--batch-size", "2", "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "model.safetensors").is_file()
