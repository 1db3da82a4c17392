#!/usr/bin/env bash
# Proxy cost, side by side in one run on loopback, of the same Go backend
# (1 KiB body) alone and behind three proxies, each with its access log off
# and on (its default):
#   nginx from Debian   (worker_processes = GOMAXPROCS, upstream keepalive)
#   HAProxy from Debian (nbthread = GOMAXPROCS, http-reuse always)
#   nullops-ingress     (the real binary, route table from its state dir)
# Every access log goes to a file in the work directory. For each target it
# reports requests/s and p99 (wrk) and the proxy's CPU time per request
# (user + system time of its processes, read from /proc before and after the
# measured run). Targets alternate within each round; medians over rounds.
#
#   bash scripts/bench-ingress.sh            # 10s per target, 3 rounds
#   DURATION=30s ROUNDS=5 CONNECTIONS=100 bash scripts/bench-ingress.sh
#   TARGETS="nginx ingress" bash scripts/bench-ingress.sh   # a subset
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-100}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
PROCS=${GOMAXPROCS:-$(nproc)}
HOST=web.bench.qa.example.test
BASE_PORT=${BASE_PORT:-18080}
NGINX=${NGINX:-/usr/sbin/nginx}
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
TARGETS=${TARGETS:-"backend nginx nginx-log haproxy haproxy-log ingress ingress-log"}
CLK_TCK=$(getconf CLK_TCK)

for bin in wrk curl "$NGINX" "$HAPROXY" go; do
  command -v "$bin" >/dev/null || { echo "bench-ingress: $bin missing (apt-get install wrk curl nginx-light haproxy)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/nullops-bench-ingress.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "building ..." >&2
CGO_ENABLED=0 go build -o "$work/benchbackend" ./ingress/benchbackend
CGO_ENABLED=0 go build -o "$work/nullops-ingress" ./cmd/nullops-ingress

declare -A PORT PIDS
port_of() { # name -> port
  local i=0 n
  for n in backend nginx nginx-log haproxy haproxy-log ingress ingress-log; do
    [ "$n" = "$1" ] && { echo $((BASE_PORT + i)); return; }
    i=$((i + 1))
  done
}
for n in backend nginx nginx-log haproxy haproxy-log ingress ingress-log; do PORT[$n]=$(port_of "$n"); done
BACKEND_PORT=${PORT[backend]}

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench-ingress: nothing listens on port $1" >&2; exit 1
}

GOMAXPROCS=$PROCS "$work/benchbackend" -listen "127.0.0.1:$BACKEND_PORT" &
pids+=($!); PIDS[backend]=$!

start_nginx() { # name accesslog(on|off)
  local dir="$work/$1" log="access_log off;"
  mkdir -p "$dir/logs"
  [ "$2" = on ] && log="access_log $dir/logs/access.log combined;"
  cat >"$dir/nginx.conf" <<EOF
worker_processes $PROCS;
pid $work/$1.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  $log
  upstream backend {
    server 127.0.0.1:$BACKEND_PORT;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${PORT[$1]};
    server_name $HOST;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
EOF
  "$NGINX" -p "$dir" -c "$dir/nginx.conf"
}

start_haproxy() { # name accesslog(on|off)
  local dir="$work/$1" log=""
  mkdir -p "$dir"
  # HAProxy logs through a syslog socket; a tiny reader writes the lines to a file.
  if [ "$2" = on ]; then
    log="log unix@$dir/log.sock local0 info"
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=65536) as f:
    while True: f.write(s.recv(65536) + b"\n")
' "$dir/log.sock" "$dir/access.log" &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$dir/log.sock" ] && break; sleep 0.05; done
  fi
  cat >"$dir/haproxy.cfg" <<EOF
global
  nbthread $PROCS
  maxconn 8192
  pidfile $work/$1.pid
  $log
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option forwardfor
  http-reuse always
  $( [ "$2" = on ] && echo "log global
  option httplog" )
frontend fe
  bind 127.0.0.1:${PORT[$1]}
  http-request set-header X-Real-IP %[src]
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  default_backend be
backend be
  server s1 127.0.0.1:$BACKEND_PORT
EOF
  "$HAPROXY" -D -f "$dir/haproxy.cfg"
}

start_ingress() { # name accesslog(true|false)
  local dir="$work/$1"
  mkdir -p "$dir"
  cat >"$dir/routes.json" <<EOF
{"etag":"\"bench\"","version":1,"saved_at":"2026-01-01T00:00:00Z"}
{"http":{"routers":{"d1-web":{"service":"d1-web","rule":"Host(\`$HOST\`)"}},"services":{"d1-web":{"loadBalancer":{"servers":[{"url":"http://127.0.0.1:$BACKEND_PORT"}],"passHostHeader":true}}}}}
EOF
  GOMAXPROCS=$PROCS NULLOPS_SERVER_URL=http://127.0.0.1:9 NULLOPS_TOKEN=bench NULLOPS_STATEDIR="$dir" \
    NULLOPS_LISTEN="127.0.0.1:${PORT[$1]}" NULLOPS_METRICS_LISTEN= NULLOPS_ACCESSLOG="$2" NULLOPS_LOG_LEVEL=error \
    "$work/nullops-ingress" >"$dir/access.log" 2>"$dir/stderr" &
  pids+=($!); PIDS[$1]=$!
}

for t in $TARGETS; do
  case $t in
    backend) ;;
    nginx) start_nginx nginx off ;;
    nginx-log) start_nginx nginx-log on ;;
    haproxy) start_haproxy haproxy off ;;
    haproxy-log) start_haproxy haproxy-log on ;;
    ingress) start_ingress ingress false ;;
    ingress-log) start_ingress ingress-log true ;;
    *) echo "bench-ingress: unknown target $t" >&2; exit 1 ;;
  esac
done
for t in $TARGETS; do
  wait_port "${PORT[$t]}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $HOST" "http://127.0.0.1:${PORT[$t]}/")
  [ "$code" = 200 ] || { echo "bench-ingress: $t answers $code, not 200" >&2; cat "$work"/*/stderr >&2 2>/dev/null; exit 1; }
  # nginx and HAProxy daemonise: find their processes by pid file (+ children).
  if [ -f "$work/$t.pid" ]; then
    main=$(cat "$work/$t.pid")
    PIDS[$t]="$main $( (pgrep -P "$main" || true) | tr "\n" " ")"
  fi
done

cpu_ticks() { # pids... -> user+system clock ticks of them all
  local total=0 p f
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    # fields 14 and 15 (utime, stime), counted after the ")" ending the command name
    f=$(sed 's/.*) //' "/proc/$p/stat")
    total=$((total + $(awk '{print $12 + $13}' <<<"$f")))
  done
  echo "$total"
}

# run name -> "rps p99_ms cpu_us_per_request"
run() {
  local port=${PORT[$1]} out before after
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -H "Host: $HOST" "http://127.0.0.1:$port/" >/dev/null # warm-up
  # shellcheck disable=SC2086
  before=$(cpu_ticks ${PIDS[$1]})
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Host: $HOST" "http://127.0.0.1:$port/")
  # shellcheck disable=SC2086
  after=$(cpu_ticks ${PIDS[$1]})
  local rps p99 reqs errs
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  [ -n "$errs" ] && echo "bench-ingress: $1: $errs" >&2
  awk -v r="$rps" -v p="$p99" -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$reqs" \
    'BEGIN {printf "%s %s %.1f\n", r, p, t * 1e6 / hz / n}'
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, GOMAXPROCS=$PROCS; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
declare -A RPS P99 CPU
for round in $(seq "$ROUNDS"); do
  for t in $TARGETS; do
    read -r r p c < <(run "$t")
    RPS[$t]+="$r "; P99[$t]+="$p "; CPU[$t]+="$c "
    echo "  round $round $t: $r req/s, p99 $p ms, $c µs CPU/request" >&2
  done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a/b}'; }
label() {
  case $1 in
    backend) echo "backend alone" ;;
    nginx) echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), log off" ;;
    nginx-log) echo "nginx, access log on" ;;
    haproxy) echo "HAProxy $("$HAPROXY" -v | awk 'NR==1 {print $3}'), log off" ;;
    haproxy-log) echo "HAProxy, access log on" ;;
    ingress) echo "nullops-ingress, log off" ;;
    ingress-log) echo "nullops-ingress, access log on (default)" ;;
  esac
}
ref=nginx; [[ " $TARGETS " == *" nginx "* ]] || ref=$(awk '{print $1}' <<<"$TARGETS")
ref_rps=$(median "${RPS[$ref]}"); ref_cpu=$(median "${CPU[$ref]}")
echo
echo "| target | requests/s | p99 (ms) | CPU µs/request | req/s vs $ref | CPU/request vs $ref |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for t in $TARGETS; do
  r=$(median "${RPS[$t]}"); p=$(median "${P99[$t]}"); c=$(median "${CPU[$t]}")
  if [ "$t" = backend ]; then
    echo "| $(label "$t") | $r | $p | $c | | |"
  else
    echo "| $(label "$t") | $r | $p | $c | $(ratio "$r" "$ref_rps") | $(ratio "$c" "$ref_cpu") |"
  fi
done
echo
echo "CPU µs/request of the backend row is the backend's own; for proxies it is the proxy's alone."
