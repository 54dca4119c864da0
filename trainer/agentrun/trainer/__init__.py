"""The GRPO LoRA learner: rollouts against the model server, then clipped-ratio updates of the adapter.
Arrives with issue #4."""
