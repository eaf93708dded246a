#!/usr/bin/env bash
# The peer comparison of BENCHMARKS.md, reproducible: builds `wasmtime-cli` of the
# version payhost embeds and a hello `wasi:http` component (same 64 KiB wasm stack and
# size profile as payhost's plugins), then runs `payhost bench peer`, which loads
# payhost's native route, its template route (fresh and with `reuse = 128`) and
# `wasmtime serve` in three configurations one after another in the same run and
# prints one table. Not part of CI (it compiles wasmtime-cli, several minutes).
#
#   tests/peer/run.sh [--connections N] [--seconds S]
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

# The wasmtime version payhost is built with, read from the lock file.
version="$(awk '/^name = "wasmtime"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)"
if [ -z "$version" ]; then
    echo "run.sh: no wasmtime version found in Cargo.lock" >&2
    exit 1
fi
peer_dir="$root/target/peer"
wasmtime="$peer_dir/wasmtime-$version/bin/wasmtime"

if [ ! -x "$wasmtime" ] || ! "$wasmtime" --version | grep -q " $version"; then
    echo "run.sh: building wasmtime-cli $version into $peer_dir (once)" >&2
    cargo install wasmtime-cli --locked --version "$version" --root "$peer_dir/wasmtime-$version"
fi
if ! "$wasmtime" serve --help | grep -q -- "--max-instance-reuse-count"; then
    echo "run.sh: this wasmtime serve has no --max-instance-reuse-count; the reuse row cannot run" >&2
    exit 1
fi

rustup target add wasm32-wasip2 >/dev/null
# Run from the crate's directory so the repository's .cargo/config.toml (64 KiB stack)
# applies; its own target dir keeps it apart from the workspace's.
(cd tests/peer/hello-http && cargo build --release --target wasm32-wasip2 --target-dir "$peer_dir/hello-http")
hello="$peer_dir/hello-http/wasm32-wasip2/release/hello_http.wasm"

cargo xtask build-plugins
cargo build --release -p payhost
"$root/target/release/payhost" bench peer --wasmtime "$wasmtime" --hello "$hello" "$@"
