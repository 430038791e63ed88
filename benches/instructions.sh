#!/usr/bin/env bash
# Instructions per request, counted by callgrind: repeatable to ~1–2% on a
# shared machine where req/s moves ±10% between identical runs. Use it to
# compare two builds of the same request path.
#
#   cargo build --release && bash benches/instructions.sh [BINARY] [N]
#
# Starts BINARY (default target/release/qcgate) under valgrind on a temporary
# data dir, warms it up, then counts N signed RunClusterCustomService
# requests, N signed DescribeJobs of a recent job (held in the job views) and
# N of a job stored by an earlier run (read from SQLite), each sent by
# `qcgate call`.
# SHA-256 runs its portable code under valgrind (no SHA extensions), so the
# signature's share is larger here than on hardware.
set -euo pipefail
BIN=${1:-target/release/qcgate}
N=${2:-50}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }
D=$(mktemp -d)
VP=
cleanup() { [ -n "$VP" ] && kill -TERM "$VP" 2>/dev/null; wait 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
echo "max_open_jobs_per_owner = 100000" > "$D/cfg.toml"
# Starts the gateway (prefixed by "$@", e.g. valgrind) and waits for its endpoint.
serve() {
  "$@" "$BIN" serve --config "$D/cfg.toml" --listen 127.0.0.1:0 --data-dir "$D/data" \
    --model-delay 3600000 > "$D/out.txt" 2> "$D/err.txt" &
  VP=$!
  for _ in $(seq 1 600); do grep -q "listening on" "$D/out.txt" 2>/dev/null && break; sleep 0.1; done
  EP=$(grep -o 'http://[^ ]*/iaas/' "$D/out.txt" | head -1)
}
SP='service_params={"sync_way":"full","zone":"sh1a","host":"127.0.0.1","cluster_id":"cl-source00","user":"repl","password":"Passwd@123","port":3306}'
call() { "$BIN" call "$@" --endpoint "$EP" --zone sh1a; }
write() { call RunClusterCustomService cluster=cl-instr001 service=start_standby "$SP" "req_id=$1"; }
job_of() { grep -o 'j-[0-9a-z]*' | head -1; }
# A first, plain run creates the key, the cluster and a job that the second
# run holds only on disk (its job views start empty).
serve
for _ in $(seq 1 100); do grep -q "owner:" "$D/out.txt" 2>/dev/null && break; sleep 0.1; done
field() { awk -v f="$1" '$1 == f {print $2; exit}' "$D/out.txt"; }
export QCGATE_ACCESS_KEY_ID=$(field access_key_id:) QCGATE_SECRET_ACCESS_KEY=$(field secret_access_key:)
"$BIN" clusters add --id cl-instr001 --zone sh1a --owner "$(field owner:)" --data-dir "$D/data" > /dev/null
OLD=$(write old | job_of)
kill -TERM "$VP"; wait "$VP" || true
serve valgrind --tool=callgrind --callgrind-out-file="$D/cg.out"
# Counts the instructions the gateway runs for N calls of "$@".
count() {
  callgrind_control -z "$VP" > /dev/null
  for i in $(seq 1 "$N"); do "$@" "$i" > /dev/null; done
  callgrind_control -d "$VP" > /dev/null
  sleep 1
  local total
  total=$(grep -m1 '^totals:' "$(ls -t "$D"/cg.out* | head -1)" | awk '{print $2}')
  echo $((total / N))
}
for i in 1 2 3 4 5; do JOB=$(write "warm$i" | job_of); call DescribeJobs "jobs.1=$JOB" > /dev/null; done
call DescribeJobs "jobs.1=$OLD" | grep -q "$OLD" || { echo "the first run's job is missing" >&2; exit 1; }
read_job() { call DescribeJobs "jobs.1=$JOB"; }
read_old() { call DescribeJobs "jobs.1=$OLD"; }
W=$(count write)
R=$(count read_job)
O=$(count read_old)
echo "RunClusterCustomService:           $W instructions/request"
echo "DescribeJobs by id:                $R instructions/request"
echo "DescribeJobs by id, not in memory: $O instructions/request"
