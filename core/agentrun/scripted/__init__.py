"""A fake model server that plays a scripted policy over vLLM's OpenAI-compatible HTTP contract.

It serves `POST /v1/chat/completions`, `GET /v1/models` and `GET /health` with the request fields and
response shapes of `vllm serve ... --enable-auto-tool-choice --tool-call-parser hermes`, including
vLLM's extensions the learner depends on (`return_token_ids` -> top-level `prompt_token_ids` and
`choices[].token_ids`) and its error body (`{"error": {"message", "type", "param", "code"}}`, 404
`NotFoundError` for an unknown model, 400 `BadRequestError` for a malformed request). Tests, benchmarks
and demonstration generation run the real rollout client against it.

Where it deviates from vLLM:
- The "model" is a policy (`policies.oracle` or `policies.noisy`) that recognises the scenario by its
  question; a question that is not in its dataset is a 400, where a real model would answer anything.
- Token ids come from a fake tokenizer (`tokens`): word pieces of at most 4 bytes whose ids are their
  bytes, not a vocabulary's (ids go up to 2**31, not to a vocabulary size), applied to a ChatML-style
  rendering of the prompt and of the completion (hermes `<tool_call>` blocks); its counts are close to
  a real BPE's. Log-probabilities are made up.
- `temperature`, `top_p` and `stop` are validated and ignored; `seed` seeds the policy's choices;
  `tool_choice: "none"` returns the rendered tool calls as text; `stream: true` is refused (400).
- Extensions: injected latency per request, injected faults for the first requests (`Faults`), and
  `GET /scripted/stats` (request counts and the most requests ever in flight at once).
"""
