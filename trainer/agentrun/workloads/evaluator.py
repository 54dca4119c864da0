"""An evaluation Job: one checkpoint on the validation scenarios (`--step N`), or the final comparison
(`--final`: the starting policy and the newest checkpoint on the final split), through the run's vLLM
Service. Results go to evals/ on the volume and the newest one into status.progress.

    python -m agentrun.workloads.evaluator --step 20 | --final
"""

from __future__ import annotations

import argparse
import os

from agentrun import checkpoint_files, pipeline, storage
from agentrun.evaluator import benchmark, summary
from agentrun.kube import Kube
from agentrun.kube_status import StatusWriter
from agentrun.workloads import prepare
from agentrun.workloads.context import Workload


def report(writer: StatusWriter | None, workload: Workload, step: int, split: str, result: summary.EvalSummary) -> None:
    if writer is None:
        return
    writer.progress(lastEvaluation={"step": step, "split": split, "reward": round(result.mean_reward, 4),
                                    "accuracy": round(result.answer_accuracy, 4),
                                    "sourcesAccuracy": round(result.sources_accuracy, 4),
                                    "turns": round(result.mean_turns, 3),
                                    "latencyP50Seconds": round(result.latency_p50_seconds, 3)},
                    bestCheckpoint=pipeline.best_checkpoint(workload.layout, workload.run.metadata.name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--step", type=int, help="evaluate checkpoint step-N on the validation scenarios")
    target.add_argument("--final", action="store_true", help="the starting policy and the newest checkpoint "
                        "on evaluation.finalSplit")
    args = parser.parse_args()
    workload = Workload.from_environment()
    run, layout = workload.run, workload.layout
    if not workload.server_url:
        raise SystemExit("AGENTRUN_SERVER_URL not set: evaluations query the run's vLLM Service")
    name, evaluation = run.metadata.name, run.spec.evaluation
    dataset_dir = layout.dataset_dir(run.spec.dataset.name)
    writer = StatusWriter(Kube.in_cluster(), workload.namespace, name) if os.environ.get("KUBERNETES_SERVICE_HOST") \
        else None
    if args.final:
        newest = checkpoint_files.latest(layout.checkpoints_dir(name))
        if newest is None:
            raise SystemExit(f"no intact checkpoint under {layout.checkpoints_dir(name)}")
        step = int(newest.name.removeprefix("step-"))
        scenarios = benchmark.select_scenarios(dataset_dir, evaluation.final_split, evaluation.limit)
        base = prepare.prepared_base(run, layout, dataset_dir)
        pipeline.evaluate(run, layout, workload.server_url, dataset_dir, base, 0, evaluation.final_split, scenarios)
        result = pipeline.evaluate(run, layout, workload.server_url, dataset_dir, newest.name, step,
                                   evaluation.final_split, scenarios)
        report(writer, workload, step, evaluation.final_split, result)
        return
    damage = checkpoint_files.problem(layout.checkpoint_dir(name, args.step))
    if damage:
        raise SystemExit(f"cannot evaluate step {args.step}: {damage}")
    scenarios = benchmark.validation_scenarios(dataset_dir, evaluation.limit)
    result = pipeline.evaluate(run, layout, workload.server_url, dataset_dir, storage.checkpoint_name(args.step),
                               args.step, pipeline.VALIDATION, scenarios)
    report(writer, workload, args.step, pipeline.VALIDATION, result)


if __name__ == "__main__":
    main()
