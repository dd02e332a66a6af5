#!/usr/bin/env bash
# Installs what the build and the tests need, then configures and builds into build/.
# Safe to run again: installs only what is missing, rebuilds incrementally.
#   tools/setup.sh            install + build
#   tools/setup.sh --no-build install only
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: compiler and build tools, the libraries we link, clang for the fuzz target,
# Python for the benchmark harness, Neovim for the plugin tests.
apt_packages=(build-essential cmake ninja-build pkg-config git ca-certificates
              libboost-dev nlohmann-json3-dev doctest-dev libpcre2-dev libutf8proc-dev
              clang libclang-rt-14-dev python3 neovim)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, pinned by each folder's package-lock.json. Lock files record no download
# addresses; npm ci is skipped when node_modules already matches the lock.
npm config set omit-lockfile-registry-resolved true >/dev/null 2>&1 || true
for dir in grammars tests/integration tests/tokenizer editors/vscode; do
  [ -f "$dir/package-lock.json" ] || continue
  stamp="$dir/node_modules/.ghostline-lock-sha"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$stamp"
  fi
done

[ "${1:-}" = "--no-build" ] && exit 0

jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -f build/CMakeCache.txt ]; then
  log "configuring build/"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${GHOSTLINE_CMAKE_ARGS:-} >/dev/null
fi
log "building (-j$jobs)"
cmake --build build -j"$jobs"
