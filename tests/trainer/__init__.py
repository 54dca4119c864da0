"""Tests of supervised fine-tuning: demonstrations, the assistant-only mask, the curriculum and the loop."""
