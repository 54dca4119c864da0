#!/usr/bin/env bash
# The quickstart on embedded defaults: build the synthetic mailbox, serve the scripted oracle policy
# behind an OpenAI-compatible endpoint, and benchmark it on the test split through `agentrun eval`.
# (The embedded model server replaces the oracle here once it lands.)
set -euo pipefail
root=${AGENTRUN_ROOT:-.agentrun}
data=$root/datasets/quickstart
if [ ! -f "$data/emails.db" ]; then
  agentrun data build --source synthetic --seed 0 --emails 20000 --out "$data"
fi
port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
agentrun serve-scripted --dataset "$data" --policy oracle --model oracle --port "$port" --log-level warning &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
agentrun eval --endpoint "http://127.0.0.1:$port/v1" --model oracle --dataset "$data" --split test \
  --limit 250 --wait-for-server 60 --out "$root/quickstart-eval.json"
