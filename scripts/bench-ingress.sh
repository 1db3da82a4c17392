#!/usr/bin/env bash
# Throughput and p99 latency, side by side in one run on loopback, of the
# same Go backend (1 KiB body):
#   1. alone,
#   2. behind nginx from Debian (upstream keepalive, worker_processes = GOMAXPROCS),
#   3. behind nullops-ingress (access log off, like nginx's),
#   4. behind nullops-ingress with its access log on (to /dev/null),
# with wrk at 100 connections, in rounds (medians reported). Prints a
# Markdown table and the ratios to nginx.
#
#   bash scripts/bench-ingress.sh            # 10s per target
#   DURATION=30s ROUNDS=5 CONNECTIONS=100 bash scripts/bench-ingress.sh
#
# nullops-ingress is run as built (go build ./cmd/nullops-ingress) and fed
# the route table through its state directory (the file it persists), with
# the server URL pointing at a closed port: the routing path is the real one.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-100}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
PROCS=${GOMAXPROCS:-$(nproc)}
HOST=web.bench.qa.example.test
BACKEND_PORT=${BACKEND_PORT:-18081}
NGINX_PORT=${NGINX_PORT:-18082}
INGRESS_PORT=${INGRESS_PORT:-18083}
INGRESS_LOG_PORT=${INGRESS_LOG_PORT:-18084}
NGINX=${NGINX:-/usr/sbin/nginx}

for bin in wrk "$NGINX" go; do
  command -v "$bin" >/dev/null || { echo "bench-ingress: $bin missing (apt-get install wrk nginx-light)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/nullops-bench-ingress.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "building ..." >&2
CGO_ENABLED=0 go build -o "$work/benchbackend" ./ingress/benchbackend
CGO_ENABLED=0 go build -o "$work/nullops-ingress" ./cmd/nullops-ingress

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench-ingress: nothing listens on port $1" >&2; exit 1
}

GOMAXPROCS=$PROCS "$work/benchbackend" -listen "127.0.0.1:$BACKEND_PORT" &
pids+=($!)

# nginx: same worker count as the Go programs' GOMAXPROCS, keep-alive to the upstream.
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes $PROCS;
pid $work/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend {
    server 127.0.0.1:$BACKEND_PORT;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    server_name $HOST;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf"

# nullops-ingress: the route table as the server publishes it, saved where
# the ingress keeps its last good configuration.
start_ingress() { # port accesslog
  local dir="$work/ingress-$1"
  mkdir -p "$dir"
  cat >"$dir/routes.json" <<EOF
{"etag":"\"bench\"","version":1,"saved_at":"2026-01-01T00:00:00Z"}
{"http":{"routers":{"d1-web":{"service":"d1-web","rule":"Host(\`$HOST\`)"}},"services":{"d1-web":{"loadBalancer":{"servers":[{"url":"http://127.0.0.1:$BACKEND_PORT"}],"passHostHeader":true}}}}}
EOF
  GOMAXPROCS=$PROCS NULLOPS_SERVER_URL=http://127.0.0.1:9 NULLOPS_TOKEN=bench NULLOPS_STATEDIR="$dir" \
    NULLOPS_LISTEN="127.0.0.1:$1" NULLOPS_METRICS_LISTEN= NULLOPS_ACCESSLOG="$2" NULLOPS_LOG_LEVEL=error \
    "$work/nullops-ingress" >/dev/null 2>"$dir/stderr" &
  pids+=($!)
}
start_ingress "$INGRESS_PORT" false
start_ingress "$INGRESS_LOG_PORT" true

for p in "$BACKEND_PORT" "$NGINX_PORT" "$INGRESS_PORT" "$INGRESS_LOG_PORT"; do wait_port "$p"; done
for p in "$NGINX_PORT" "$INGRESS_PORT" "$INGRESS_LOG_PORT"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $HOST" "http://127.0.0.1:$p/")
  [ "$code" = 200 ] || { echo "bench-ingress: port $p answers $code, not 200" >&2; cat "$work"/ingress-*/stderr >&2; exit 1; }
done

# run name port -> "rps p99_ms"
run() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -H "Host: $HOST" "http://127.0.0.1:$2/" >/dev/null # warm-up
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Host: $HOST" "http://127.0.0.1:$2/")
  local rps p99 errs
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  [ -n "$errs" ] && echo "bench-ingress: $1: $errs" >&2
  echo "$rps $p99"
}

echo "running wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds (GOMAXPROCS=$PROCS, nginx workers=$PROCS) ..." >&2
names=(backend nginx ingress ingresslog)
ports=("$BACKEND_PORT" "$NGINX_PORT" "$INGRESS_PORT" "$INGRESS_LOG_PORT")
declare -A RPS P99
for round in $(seq "$ROUNDS"); do
  # Targets alternate within each round so load changes on a shared machine
  # hit all of them alike; the medians over rounds are reported.
  for i in "${!names[@]}"; do
    read -r r p < <(run "${names[$i]}" "${ports[$i]}")
    RPS[${names[$i]}]+="$r "
    P99[${names[$i]}]+="$p "
    echo "  round $round ${names[$i]}: $r req/s, p99 $p ms" >&2
  done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
b_rps=$(median "${RPS[backend]}"); b_p99=$(median "${P99[backend]}")
n_rps=$(median "${RPS[nginx]}"); n_p99=$(median "${P99[nginx]}")
i_rps=$(median "${RPS[ingress]}"); i_p99=$(median "${P99[ingress]}")
l_rps=$(median "${RPS[ingresslog]}"); l_p99=$(median "${P99[ingresslog]}")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
echo
echo "| target | requests/s | p99 (ms) | req/s vs nginx | p99 vs nginx |"
echo "| --- | ---: | ---: | ---: | ---: |"
echo "| backend alone | $b_rps | $b_p99 | | |"
echo "| nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') | $n_rps | $n_p99 | 1.00 | 1.00 |"
echo "| nullops-ingress | $i_rps | $i_p99 | $(ratio "$i_rps" "$n_rps") | $(ratio "$i_p99" "$n_p99") |"
echo "| nullops-ingress, access log on | $l_rps | $l_p99 | $(ratio "$l_rps" "$n_rps") | $(ratio "$l_p99" "$n_p99") |"
echo
echo "goals: req/s vs nginx >= 0.65, p99 vs nginx <= 1.5 (nullops-ingress row)"
