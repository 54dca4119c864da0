"""The embedded model server: vLLM's OpenAI-compatible contract over transformers + PEFT on CPU.

Laptops, CI and the quickstart have no GPU and no vLLM, so rollouts and evaluations talk to this
server instead; the learner and evaluator cannot tell the two apart (docs/SERVER.md lists what it
mirrors and where it differs). Modules: `engine` (continuous batching on a worker thread),
`sampling`, `kvcache`, `adapters` (LoRA registry and the filesystem resolver), `toolcalls` (hermes
parser), `completions` (request -> jobs -> response body), `metrics`, `app` (routes), `build`
(model + app from a model id), `background` (run it in a thread or a child process), `cli`.
"""
