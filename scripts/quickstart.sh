#!/usr/bin/env bash
# The quickstart on embedded defaults, everything offline on the CPU:
#   1. build the synthetic mailbox (seconds);
#   2. build the tiny model and bootstrap it: copy curriculum, language phase, SFT on the scripted
#      oracle's demonstrations (the long step: see docs/BENCHMARKS.md; done once, then cached);
#   3. serve it with the embedded OpenAI-compatible server and benchmark it through `agentrun eval`.
# A second run reuses the dataset and the bootstrapped model and only evaluates.
set -euo pipefail
root=${AGENTRUN_ROOT:-.agentrun}
data=$root/datasets/quickstart
policy=$root/models/tiny-sft
if [ ! -f "$data/emails.db" ]; then
  agentrun data build --source synthetic --seed 0 --emails 20000 --out "$data"
fi
if [ ! -f "$policy/config.json" ]; then  # complete or absent: `agentrun sft` writes it atomically
  agentrun sft --base builtin:tiny --dataset "$data" --out "$policy" --root "$root"
fi
port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
agentrun serve --model "$policy" --port "$port" --cache-root "$root" --log-level warning &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
agentrun eval --endpoint "http://127.0.0.1:$port/v1" --model "$policy" --dataset "$data" --split test \
  --limit 250 --concurrency 16 --max-new-tokens 256 --wait-for-server 300 --out "$root/quickstart-eval.json"
