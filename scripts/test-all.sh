#!/usr/bin/env bash
# Runs every check and test of the workspace, on SQLite and on PostgreSQL.
#
# PostgreSQL: uses AUSTA_TEST_DATABASE_URL when set (a server where the user may CREATE DATABASE; each
# test creates its own database from a template migrated once, and drops it). Otherwise it starts a
# throwaway cluster on 127.0.0.1 with the machine's PostgreSQL binaries and removes it on exit. With
# CI=true, a missing PostgreSQL fails the run instead of skipping those tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase is timed; the breakdown is printed at the end and written to target/test-times.txt.
phase_name=""
phase_start=$SECONDS
timings=()
phase() {
  local now=$SECONDS
  if [ -n "$phase_name" ]; then
    timings+=("$(printf '%6ds  %s' $((now - phase_start)) "$phase_name")")
  fi
  phase_name=$1
  phase_start=$now
  if [ -n "$1" ]; then echo "test-all: $1"; fi
}
report_times() {
  phase ""
  mkdir -p target
  { echo "test-all: time per phase"; printf '%s\n' "${timings[@]}"; printf '%6ds  total\n' "$SECONDS"; } |
    tee target/test-times.txt
}

pg_dir=""
pg_bin=""
cleanup() {
  if [ -n "$pg_dir" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT

# initdb refuses to run as root: run the server as the postgres user when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

find_pg_bin() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_throwaway_postgres() {
  pg_bin=$(find_pg_bin)
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    return 1
  fi
  pg_dir=$(mktemp -d /tmp/austa-pg.XXXXXX)
  chmod 755 "$pg_dir"
  [ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 >"$pg_dir/initdb.log" 2>&1
  as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $port -k $pg_dir -c fsync=off -c max_connections=300" start >/dev/null
  export AUSTA_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "test-all: started a throwaway PostgreSQL on 127.0.0.1:$port"
}

if [ -z "${AUSTA_TEST_DATABASE_URL:-}" ]; then
  if ! start_throwaway_postgres; then
    if [ "${CI:-}" = "true" ]; then
      echo "test-all: CI=true and no PostgreSQL (set AUSTA_TEST_DATABASE_URL or install postgresql)" >&2
      exit 1
    fi
    echo "test-all: no PostgreSQL found: running SQLite tests only (install postgresql to run both)" >&2
  fi
fi

phase "cargo fmt --check"
cargo fmt --all -- --check
phase "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# Licenses, duplicate crates and sources of the dependency graph (deny.toml). The advisory database
# lives on GitHub, which CI machines do not reach: `cargo deny check` on a connected machine adds it.
if command -v cargo-deny >/dev/null 2>&1; then
  phase "cargo deny (licenses, bans, sources)"
  cargo deny --log-level error check licenses bans sources
elif [ "${CI:-}" = "true" ]; then
  echo "test-all: CI=true and cargo-deny is not installed (cargo install cargo-deny --locked)" >&2
  exit 1
else
  echo "test-all: cargo-deny not installed: skipping the dependency policy (cargo install cargo-deny --locked)" >&2
fi
phase "cargo test: build"
cargo test --workspace --no-run --quiet
phase "cargo test: run (SQLite + ${AUSTA_TEST_DATABASE_URL:+PostgreSQL})"
cargo test --workspace

# The Python package: built and installed the way a user does (`pip install ./austa-py`: maturin,
# release build, abi3 wheel), then its tests on both backends, the pipeline example and mypy --strict.
phase "Python: venv and test tools (target/py-venv)"
venv=target/py-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  pytest mypy pandas pandas-stubs pyarrow
phase "Python: build and install the package (release)"
# For the host triple explicitly, as napi builds the Node addon: both release builds then share
# target/<triple>/release, and the second reuses every crate the first compiled.
host_triple=$(rustc -vV | sed -n 's/^host: //p')
CARGO_BUILD_TARGET="$host_triple" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --force-reinstall --no-deps ./austa-py
phase "Python: pytest (SQLite + ${AUSTA_TEST_DATABASE_URL:+PostgreSQL})"
(cd austa-py && "../$venv/bin/python" -m pytest -q tests)
phase "Python: the pipeline example; mypy --strict on it and on the package"
"$venv/bin/python" examples/pipeline.py >/dev/null
"$venv/bin/mypy" --strict examples/pipeline.py
(cd austa-py/python && "../../$venv/bin/mypy" --strict -p austa)

# The Node package: npm install, the build command of docs/node.md (napi build, release), its node --test
# suite on both backends, and tsc --noEmit --strict on the TypeScript example.
phase "Node: npm install"
(cd austa-node && npm install --no-audit --no-fund --loglevel=error)
phase "Node: build the addon (release)"
(cd austa-node && npm run --silent build)
phase "Node: node --test (SQLite + ${AUSTA_TEST_DATABASE_URL:+PostgreSQL}); tsc --strict"
(cd austa-node && node --test test/ && npm run --silent typecheck)

# The workload runner with small sizes, on both backends and through Python: checks that it works;
# asserts nothing about speed (the full run and its table are in benches/README.md).
phase "workload runner (--quick)"
cargo run --quiet -p austa-benches --bin workloads -- --quick --python "$venv/bin/python" \
  --json target/bench/workloads-quick.json
report_times
