#!/usr/bin/env bash
# Set up and run Meta Insights: the sync worker and the dashboard (pages and REST API on one port)
# together, on stub data with demo users unless .env says otherwise. Ctrl-C stops both.
#   PORT=8501 INSIGHTS_DATA_DIR=data scripts/run.sh
set -euo pipefail
umask 077  # the data dir holds spend and revenue: the worker and the dashboard create private files
cd "$(dirname "$0")/.."
scripts/setup.sh
PORT=${PORT:-8501}
ADDRESS=${ADDRESS:-127.0.0.1}
export INSIGHTS_DATA_DIR=${INSIGHTS_DATA_DIR:-data}
mkdir -p "$INSIGHTS_DATA_DIR"

worker_pid=""
app_pid=""
stop() {
  trap - INT TERM EXIT
  [ -n "$app_pid" ] && kill -TERM "$app_pid" 2>/dev/null || true
  [ -n "$worker_pid" ] && kill -TERM "$worker_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "Meta Insights stopped."
}
trap stop INT TERM EXIT

.venv/bin/python sync_worker.py &
worker_pid=$!
.venv/bin/python -m streamlit run app.py --server.port "$PORT" --server.address "$ADDRESS" \
  --server.headless true --browser.gatherUsageStats false &
app_pid=$!

mode=$(.venv/bin/python -c "from insights_core.settings import load_settings; print(load_settings().mode)" 2>/dev/null || echo "?")
echo
echo "Meta Insights is starting ($mode mode, data in $INSIGHTS_DATA_DIR)"
echo "  Dashboard: http://$ADDRESS:$PORT"
echo "  API:       http://$ADDRESS:$PORT/meta/insights/ (token: python -m insights_core.auth new-token USERNAME;"
echo "             description: /meta/insights/openapi.json; monitoring: /metrics, /healthz)"
if [ "$mode" = "stub" ]; then
  echo "  Demo logins (password 'demo'): admin, manager, analyst, viewer"
fi
echo "  Ctrl-C stops the worker and the dashboard."
echo
# wait for either process to end, then stop the other
wait -n "$worker_pid" "$app_pid" || true
