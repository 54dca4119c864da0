"""`agentrun run` end to end on this machine: a child `agentrun serve`, real HTTP, GRPO steps, checkpoints,
evaluations, resume, and errors before any compute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

import yaml  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from agentrun.cli.main import cli  # noqa: E402
from agentrun import checkpoint_files  # noqa: E402
from agentrun.runner import local  # noqa: E402


def manifest(tmp_path: Path, base: str, **training: object) -> Path:
    spec = {
        "apiVersion": "agentrun.dev/v1alpha1", "kind": "AgentTrainingRun", "metadata": {"name": "tiny-run"},
        "spec": {
            "model": {"base": base},
            "dataset": {"name": "small", "emails": 1000},
            "environment": {"maxTurns": 2, "maxNewTokens": 24},
            "training": {"steps": 2, "scenariosPerStep": 2, "groupSize": 2, "checkpointEvery": 1, **training},
            "rollout": {"concurrency": 4},
            "evaluation": {"everySteps": 1, "limit": 3},
            "storage": {"localDir": str(tmp_path / "root")},
        },
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_run_trains_evaluates_and_resumes(tiny_dir: Path, tmp_path: Path) -> None:
    path = manifest(tmp_path, str(tiny_dir))
    result = CliRunner().invoke(cli, ["run", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "test split, 3 questions: starting policy -> step 2" in result.output
    assert "paired over the same questions: accuracy +0.0% +/- 0.0% (+0.0 standard errors)" in result.output
    run_dir = tmp_path / "root" / "runs" / "tiny-run"
    assert f"learning curve: {run_dir / 'learning_curve.png'}" in result.output
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [step for step, _ in checkpoint_files.intact(run_dir / "checkpoints")] == [1, 2]
    adapter = json.loads((run_dir / "checkpoints" / "step-000002" / checkpoint_files.ADAPTER_CONFIG).read_text())
    assert adapter["base_model_name_or_path"] == str(tiny_dir)  # the served base name: the resolver's check
    evals = sorted(p.name for p in (run_dir / "evals").glob("*.json"))  # each with its episodes, .jsonl.gz
    assert evals == ["step-000000-test.json", "step-000000-validation.json", "step-000001-validation.json",
                     "step-000002-test.json", "step-000002-validation.json"]
    assert json.loads((run_dir / "evals" / "step-000002-test.json").read_text())["model"] == "step-000002"
    assert (run_dir / "trajectories" / "step-000002.jsonl.gz").is_file()
    timings = json.loads((run_dir / "timings.json").read_text())
    assert timings["grpo"] > 0 and timings["evaluations"] > 0
    assert timings["total"] == pytest.approx(sum(timings[phase] for phase in local.PhaseTimer.PHASES))
    shown = CliRunner().invoke(cli, ["show", str(run_dir / "trajectories" / "step-000002.jsonl.gz"), "--limit", "1"])
    assert shown.exit_code == 0 and "-- end --" in shown.output and "not available" not in shown.output  # run.json

    compared = CliRunner().invoke(cli, ["compare", str(run_dir), "--plot", str(tmp_path / "plot.png")])
    assert compared.exit_code == 0, compared.output
    assert compared.output.count("validation") == 3 and "step-000002" in compared.output
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    checkpoint = run_dir / "checkpoints" / "step-000001"
    dataset = tmp_path / "root" / "datasets" / "small"
    served = CliRunner().invoke(cli, ["eval", "--checkpoint", str(checkpoint), "--dataset", str(dataset), "--limit",
                                      "2", "--max-turns", "2", "--max-new-tokens", "24", "--no-progress"])
    assert served.exit_code == 0, served.output
    assert f"step-000001 on {dataset} (test, 2 questions)" in served.output

    again = CliRunner().invoke(cli, ["run", str(path), "--no-progress"])  # resumes at step 2: nothing left
    assert again.exit_code == 0, again.output
    assert "evaluating" not in again.output  # every evaluation is on disk already

    changed = manifest(tmp_path, str(tiny_dir), steps=3, learningRate=1e-3)
    refused = CliRunner().invoke(cli, ["run", str(changed), "--no-progress"])
    assert refused.exit_code == 1 and "with a different spec" in refused.output


def test_a_missing_base_model_fails_before_any_compute(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(manifest(tmp_path, str(tmp_path / "no-such-model"))), "--no-progress"])
    assert result.exit_code == 1
    assert "model.base" in result.output and "no-such-model" in result.output
    assert not (tmp_path / "root").exists()  # not even the dataset was built


def test_a_missing_maildir_fails_with_the_field_named(tmp_path: Path) -> None:
    path = manifest(tmp_path, "builtin:tiny")
    spec = yaml.safe_load(path.read_text())
    spec["spec"]["dataset"] = {"name": "mine", "source": "maildir", "maildirPath": str(tmp_path / "maildir")}
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(cli, ["run", str(path), "--no-progress"])
    assert result.exit_code == 1 and "dataset.maildirPath" in result.output


def test_sigterm_ends_a_run_like_ctrl_c_and_stops_its_embedded_server(tiny_dir: Path, tmp_path: Path) -> None:
    import subprocess
    import sys
    import urllib.request

    from testkit.cluster import free_port, wait_until

    port = free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as out:  # a file, not a pipe nobody reads while the run and its server write to it
        run = subprocess.Popen([sys.executable, "-m", "agentrun.cli.main", "run",
                                str(manifest(tmp_path, str(tiny_dir), steps=50)), "--server-port", str(port),
                                "--no-progress"], stdout=out, stderr=subprocess.STDOUT)

    def serving() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200

    try:
        wait_until(serving, timeout=180, what="the run's embedded server", alive=lambda: run.poll() is None or
                   pytest.fail(f"the run exited early: {log.read_text()[-2000:]}"))
        run.terminate()
        run.wait(timeout=60)
    finally:
        run.kill()
        run.wait()
    output = log.read_text()
    assert run.returncode == 1 and "interrupted: every complete checkpoint is kept" in output, output[-2000:]
    with pytest.raises(OSError):  # the server went with the run
        serving()


def test_the_summary_reports_the_paired_gain_and_points_at_a_question_to_read(tmp_path: Path) -> None:
    from agentrun.evaluator import compare, summary

    def evaluation(accuracy: float) -> summary.EvalSummary:
        return summary.EvalSummary(questions=4, answer_accuracy=accuracy, sources_accuracy=accuracy,
                                   mean_reward=accuracy, mean_turns=3.0, latency_p50_seconds=1.0,
                                   latency_p95_seconds=2.0)

    outcome = local.Outcome(tmp_path, 30, evaluation(0.25), evaluation(0.75), "step-000030",
                            accuracy=compare.paired([1, 0, 0, 0], [1, 1, 1, 0]),
                            reward=compare.paired([1, 0, 0, 0], [1, 1, 1, 0]),
                            curve=tmp_path / "learning_curve.png", turned=7,
                            seconds={"dataset": 0.1, "bootstrap": 0.0, "evaluations": 61.4, "grpo": 302.6})
    text = local.render_outcome(outcome, "test")
    assert "wall time of this invocation: evaluations 61 s, grpo 303 s (timings.json)" in text
    assert "answer accuracy      25.0% ->    75.0%" in text
    assert "accuracy +50.0% +/- 28.9% (+1.7 standard errors)" in text
    assert f"agentrun show {tmp_path / 'evals' / 'step-000030-test.json'} --scenario 7" in text


def test_a_run_on_real_vllm_trains_on_adapters_it_loads_and_evaluates_them(tiny_dir: Path, tmp_path: Path) -> None:
    """`agentrun run --server vllm`: the same run with vLLM (its CPU build, `make vllm`) serving the base
    and the adapters the learner publishes at runtime."""
    from testkit import vllm

    path = manifest(tmp_path, str(tiny_dir), steps=1)
    spec = yaml.safe_load(path.read_text())
    # vLLM refuses a max-model-len beyond the model's 4096 positions (the embedded server does not check)
    spec["spec"]["model"] = {**spec["spec"]["model"], "maxModelLen": 4096, "dtype": "float32"}
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(cli, ["run", str(path), "--no-progress", "--server", "vllm",
                                      "--vllm-command", str(vllm.vllm_bin())])
    assert result.exit_code == 0, result.output
    assert "test split, 3 questions: starting policy -> step 1" in result.output
    run_dir = tmp_path / "root" / "runs" / "tiny-run"
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1]
    assert json.loads((run_dir / "evals" / "step-000001-test.json").read_text())["model"] == "step-000001"


def test_a_missing_vllm_command_is_an_error_saying_how_to_get_one(tiny_dir: Path, tmp_path: Path) -> None:
    path = manifest(tmp_path, str(tiny_dir))
    result = CliRunner().invoke(cli, ["run", str(path), "--no-progress", "--server", "vllm",
                                      "--vllm-command", str(tmp_path / "no-vllm")])
    assert result.exit_code == 1 and "--server vllm: no vllm command at" in result.output
    assert "make vllm" in result.output and "Traceback" not in result.output
