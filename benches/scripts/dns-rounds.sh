#!/usr/bin/env bash
# Interleaved rounds of the DNS resolver benchmark: our `dns_bench`, the raw UDP + epoll floor
# and the evdns client, one after another against one dnsmasq, ROUNDS times; then each
# client's median CPU per lookup and p99, and the per-round ratios of ours to the others.
# A harness run (`cargo xtask bench compare --only dns`) starts a fresh dnsmasq per client and
# takes medians of a few reps of 100,000 lookups; on a shared 2-core machine its p99 ratio
# moves by more than the differences between the clients (see docs/BENCHMARKING.md, "Fifth
# session"), and many longer paired rounds separate them better.
#
# Usage (after `cargo xtask bench build`; needs dnsmasq):
#   benches/scripts/dns-rounds.sh [ROUNDS] [Q]      (default 10 rounds of 300000 lookups, F=100)
#
# dnsmasq listens on 127.0.0.1 on a free port only and is killed on exit; a round of the three
# clients takes about 8 seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
ROUNDS="${1:-10}"
Q="${2:-300000}"
NAMES=1000
HOSTS="$(mktemp)"
OUT="$(mktemp)"
RES="$(mktemp)"
DP=""
cleanup() {
    [ -n "$DP" ] && kill "$DP" 2>/dev/null || true
    rm -f "$HOSTS" "$OUT" "$RES"
}
trap cleanup EXIT

# name<i>.bench.test -> 10.0.0.0 + i + 1, as the harness serves them.
for i in $(seq 0 $((NAMES - 1))); do
    a=$((0x0A000000 + i + 1))
    echo "10.$(((a >> 16) & 255)).$(((a >> 8) & 255)).$((a & 255)) name$i.bench.test"
done >"$HOSTS"
PORT=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --listen-address=127.0.0.1 \
    --bind-interfaces --cache-size=10000 --local-ttl=300 --pid-file= --port="$PORT" \
    --addn-hosts="$HOSTS" --user="$(id -un)" >/dev/null 2>&1 &
DP=$!
sleep 0.5

CLIENTS=("oxevent:$ROOT/target/release/dns_bench"
    "epoll:$ROOT/benches/c/build/dns_bench_epoll"
    "libevent:$ROOT/benches/c/build/dns_bench_libevent")
for r in $(seq "$ROUNDS"); do
    for c in "${CLIENTS[@]}"; do
        imp="${c%%:*}"
        bin="${c#*:}"
        "$bin" -s "127.0.0.1:$PORT" -q "$Q" -f 100 -n "$NAMES" -i "$imp" >"$OUT"
        cpu=$(grep -o 'client_cpu .*value=[0-9.]*' "$OUT" | grep -o '[0-9.]*$')
        p99=$(grep -o 'resolve.p99 .*value=[0-9.]*' "$OUT" | grep -o '[0-9.]*$')
        echo "$r $imp $cpu $p99" | tee -a "$RES"
    done
done

python3 - "$RES" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for r, imp, cpu, p99 in rows:
    by.setdefault(imp, {})[int(r)] = (float(cpu), float(p99))
print()
for imp, d in by.items():
    cpu = [v[0] for v in d.values()]
    p99 = [v[1] for v in d.values()]
    print(f"{imp:9s} CPU per lookup median {statistics.median(cpu):7.0f} ns   p99 median {statistics.median(p99):7.1f} us")
ours = by.get("oxevent", {})
for imp in ("epoll", "libevent"):
    other = by.get(imp, {})
    rounds = sorted(set(ours) & set(other))
    if not rounds:
        continue
    c = [ours[k][0] / other[k][0] for k in rounds]
    p = [ours[k][1] / other[k][1] for k in rounds]
    lower = sum(1 for x in p if x < 1)
    print(f"oxevent / {imp:8s} CPU median {statistics.median(c):.3f}x   p99 median {statistics.median(p):.3f}x"
          f" (ours lower in {lower} of {len(p)} rounds)")
PY
