"""Tests of the base models: tokenizer, chat template, the tiny model and model resolution."""
