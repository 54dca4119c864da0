"""Base models: the offline tiny Qwen3 and its tokenizer, and resolving and loading any base model."""
