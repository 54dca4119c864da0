"""Sampling rules on hand-computed distributions."""

from __future__ import annotations

import math

import torch

from agentrun.serving import sampling


def test_top_p_keeps_the_smallest_head_that_reaches_p() -> None:
    probs = torch.tensor([0.1, 0.5, 0.3, 0.1])
    torch.testing.assert_close(sampling._top_p_filter(probs, 0.8), torch.tensor([0.0, 0.5, 0.3, 0.0]))
    torch.testing.assert_close(sampling._top_p_filter(probs, 0.5), torch.tensor([0.0, 0.5, 0.0, 0.0]))
    torch.testing.assert_close(sampling._top_p_filter(probs, 0.01), torch.tensor([0.0, 0.5, 0.0, 0.0]))


def test_temperature_zero_is_greedy_and_a_seed_replays() -> None:
    logits = torch.tensor([0.0, 2.0, 1.0])
    greedy = sampling.SamplingParams(temperature=0.0)
    assert sampling.sample(logits, greedy, sampling.new_generator(None)) == 1
    hot = sampling.SamplingParams(temperature=5.0)
    draws = [[sampling.sample(logits, hot, generator) for _ in range(20)] for generator in
             (sampling.new_generator(4), sampling.new_generator(4))]  # fmt: skip
    assert draws[0] == draws[1] and len(set(draws[0])) > 1


def test_reported_logprobs_ignore_temperature() -> None:
    logits = torch.tensor([math.log(1.0), math.log(3.0)])
    torch.testing.assert_close(sampling.raw_logprobs(logits), torch.tensor([math.log(0.25), math.log(0.75)]))
