#!/usr/bin/env bash
# examples/demo.sh: the example agents (examples/agents.yaml) on this machine, against the
# project's fake model (scripted with the walkthrough's questions: demo/fake-model.json) and a
# throwaway PostgreSQL for the sql agent. Ctrl-C stops everything.
#
#   examples/demo.sh [gateway flags...]      e.g. examples/demo.sh --listen 127.0.0.1:8080
#
# The gateway listens on 127.0.0.1:3000 by default, with the admin key "demo-admin-key".
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/copilot-gateway
bash scripts/deps.sh test >&2   # the npm packages (runtime, MCP servers) and postgresql

tmp=$(mktemp -d /tmp/copilot-gateway-demo.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  examples/demo-db.sh stop "$tmp/pg"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# The sql agent's database; the config reads its address and password from these.
export SHOP_DB_HOST=127.0.0.1 SHOP_DB_PORT=$(free_port) SHOP_DB_PASSWORD=demo-only-password
examples/demo-db.sh start "$tmp/pg" "$SHOP_DB_PORT"
echo "demo: PostgreSQL (shop database) on 127.0.0.1:$SHOP_DB_PORT" >&2

# The fake model, scripted.
node tests/fake/fakemodel.mjs --script examples/demo/fake-model.json >"$tmp/fake.out" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$tmp/fake.out" 2>/dev/null && break; sleep 0.1; done
fake_url=$(sed -n 's/^fakemodel listening on //p' "$tmp/fake.out")
echo "demo: fake model on $fake_url" >&2

build/copilot-gateway serve --config examples/agents.yaml \
  --provider-url "$fake_url/v1" --provider-key demo --provider-type openai \
  --admin-key demo-admin-key --data "$tmp/data" "$@" &
pids+=($!)
wait "${pids[-1]}"
