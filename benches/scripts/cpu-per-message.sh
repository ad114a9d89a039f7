#!/usr/bin/env bash
# CPU accounting for the echo, TLS echo and HTTP hello workloads: for each server, the user and
# system CPU it spends per message (or request), and the CPU of the load client on the same
# machine. On a 2-core machine where the client and the server share the cores, these figures
# bound the throughput ratio a server can reach (see docs/BENCHMARKING.md, "Fourth session").
#
# Usage (after `cargo xtask bench build`; the TLS runs also need the certificate that
# `cargo xtask bench compare --only tls` makes under target/bench/tls):
#   benches/scripts/cpu-per-message.sh echo  [CONNS SIZE] [REPS]   (default 64 4096 2)
#   benches/scripts/cpu-per-message.sh tls   [REPS]                (16 connections, 16 KiB)
#   benches/scripts/cpu-per-message.sh http  [REPS]                (wrk -t2 -c64, GET /)
#
# Every server binds 127.0.0.1 port 0 and is killed on exit; each run lasts about 8 seconds.
# CPU comes from /proc/PID/stat (clock ticks) over a window inside the client's measured time.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="$ROOT/target/release"
CERT_DIR="$ROOT/target/bench/tls"
SRV_OUT="$(mktemp)"
CLI_OUT="$(mktemp)"
SP=""
cleanup() {
    [ -n "$SP" ] && kill "$SP" 2>/dev/null || true
    rm -f "$SRV_OUT" "$CLI_OUT"
}
trap cleanup EXIT

# start_server BIN ARGS...: starts it, waits (at most 5 s) for READY, sets SP and PORT.
start_server() {
    "$@" -p 0 -T 60 >"$SRV_OUT" 2>&1 &
    SP=$!
    for _ in $(seq 50); do
        grep -q READY "$SRV_OUT" && break
        sleep 0.1
    done
    PORT=$(grep -o 'port=[0-9]*' "$SRV_OUT" | cut -d= -f2)
    [ -n "$PORT" ] || { echo "server $1 did not start" >&2; exit 1; }
}

stop_server() {
    kill "$SP" 2>/dev/null || true
    wait "$SP" 2>/dev/null || true
    SP=""
}

ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

# report LABEL UNITS S0 S1 C0 C1 SECONDS: per-unit server user, server sys, client CPU in us.
report() {
    python3 - "$@" <<'PY'
import os, sys
label, units, s0, s1, c0, c1 = sys.argv[1], float(sys.argv[2]), *sys.argv[3:7]
hz = os.sysconf("SC_CLK_TCK")
(su0, ss0), (su1, ss1) = map(int, s0.split()), map(int, s1.split())
(cu0, cs0), (cu1, cs1) = map(int, c0.split()), map(int, c1.split())
us = lambda t: t * 1e6 / hz / units
print(f"{label:8s} server user {us(su1 - su0):6.2f} sys {us(ss1 - ss0):6.2f}  "
      f"client {us(cu1 - cu0 + cs1 - cs0):6.2f} us per unit ({units:.0f} units)")
PY
}

# echo_like LABEL CLIENT CONNS SIZE SERVER ARGS...
echo_like() {
    local label=$1 client=$2 conns=$3 size=$4
    shift 4
    start_server "$@"
    "$BIN/$client" -p "$PORT" -c "$conns" -s "$size" -T 6 -w 1 -i "$label" >"$CLI_OUT" 2>&1 &
    local cp=$!
    sleep 2
    local s0 c0 t0 s1 c1 t1
    s0=$(ticks "$SP"); c0=$(ticks "$cp"); t0=$(date +%s.%N)
    sleep 4
    s1=$(ticks "$SP"); c1=$(ticks "$cp"); t1=$(date +%s.%N)
    wait "$cp"
    stop_server
    local mbps
    mbps=$(grep -o 'throughput.* value=[0-9.]*' "$CLI_OUT" | grep -o '[0-9.]*$')
    local msgs
    msgs=$(python3 -c "print($mbps * 1e6 * ($t1 - $t0) / $size)")
    echo "$label: $mbps MB/s"
    report "$label" "$msgs" "$s0" "$s1" "$c0" "$c1"
}

http_hello() {
    local label=$1
    shift
    start_server "$@" -N
    local s0 s1 w
    s0=$(ticks "$SP")
    w=$( { /usr/bin/time -f "%U %S" wrk -t2 -c64 -d4s "http://127.0.0.1:$PORT/" >"$CLI_OUT"; } 2>&1 | tail -1)
    s1=$(ticks "$SP")
    stop_server
    local n hz
    n=$(grep 'requests in' "$CLI_OUT" | awk '{print $1}')
    hz=$(getconf CLK_TCK)
    # wrk's CPU from time(1) in seconds, as ticks for `report`.
    local wu ws
    read -r wu ws <<<"$w"
    local c1
    c1=$(python3 -c "print(round($wu * $hz), round($ws * $hz))")
    echo "$label: $(grep Requests/sec "$CLI_OUT" | awk '{print $2}') req/s"
    report "$label" "$n" "$s0" "$s1" "0 0" "$c1"
}

case "${1:-}" in
echo)
    conns=${2:-64} size=${3:-4096} reps=${4:-2}
    for _ in $(seq "$reps"); do
        echo_like oxevent echo_client "$conns" "$size" "$BIN/echo_server"
        echo_like tokio echo_client "$conns" "$size" "$BIN/echo_server_tokio"
    done
    ;;
tls)
    reps=${2:-2}
    [ -f "$CERT_DIR/cert.pem" ] || { echo "no $CERT_DIR/cert.pem: run cargo xtask bench compare --only tls once" >&2; exit 1; }
    for _ in $(seq "$reps"); do
        echo_like oxevent tls_echo_client 16 16384 "$BIN/tls_echo_server" -c "$CERT_DIR/cert.pem" -k "$CERT_DIR/key.pem"
        echo_like tokio tls_echo_client 16 16384 "$BIN/tls_echo_server_tokio" -c "$CERT_DIR/cert.pem" -k "$CERT_DIR/key.pem"
    done
    ;;
http)
    reps=${2:-2}
    for _ in $(seq "$reps"); do
        http_hello oxevent "$BIN/http_hello"
        http_hello hyper "$BIN/http_hello_hyper"
        http_hello evhttp "$ROOT/benches/c/build/http_hello_libevent"
    done
    ;;
*)
    sed -n '2,14p' "$0"
    exit 2
    ;;
esac
