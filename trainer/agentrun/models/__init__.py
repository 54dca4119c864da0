"""Base models: the offline tiny Qwen3 and its tokenizer, and resolving and loading any base model.

Importing this package also drops DeepSpeed's "Setting accelerator to CPU" warning. Whenever DeepSpeed
is installed, transformers' `save_pretrained` imports it (through accelerate), and DeepSpeed then printed
that line to stdout from every command that saves a model, though only the learner's DeepSpeed engine
uses DeepSpeed (and that engine names the CPU accelerator itself, so it never needs the warning).
"""

import logging

# A filter on the logger outlives DeepSpeed's own set-up of it (level, handler), whenever that happens.
logging.getLogger("DeepSpeed").addFilter(lambda record: "Setting accelerator to CPU" not in record.getMessage())
