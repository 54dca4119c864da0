"""The training loop as one process for tests/trainer/test_crash_loop.py, which kills it with SIGKILL:

    python -m tests.trainer.crash_worker POLICY_DIR RUN_DIR STEPS

Resumes from RUN_DIR/checkpoints, trains the toy task to STEPS with the torch engine, keeps each step's
trajectories in RUN_DIR/trajectories and its record in RUN_DIR/steps.jsonl, as `agentrun run` does.
"""

from __future__ import annotations

import sys
from pathlib import Path

from agentrun import pipeline
from agentrun.trainer.learner import Learner
from agentrun.trainer.loop import LoopSettings, TrainingLoop

from .deepspeed_worker import learner_settings, lora_policy
from .toys import toy_rollouts


def main() -> None:
    policy_dir, run_dir, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    model = lora_policy(policy_dir)
    loop = TrainingLoop(Learner(model, learner_settings("torch", 2), pad_id=0), "builtin:tiny",
                        run_dir / "checkpoints", toy_rollouts(model), lambda name, path: None,
                        LoopSettings(steps=steps, checkpoint_every=3),
                        reporters=[pipeline.StepLog(run_dir / "steps.jsonl")],
                        trajectories_file=lambda step: run_dir / "trajectories" / f"step-{step:06d}.jsonl")
    loop.resume()
    loop.run()


if __name__ == "__main__":
    main()
