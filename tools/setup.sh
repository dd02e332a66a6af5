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
# Python for the benchmark harness, Neovim for the plugin tests; for the VS Code end-to-end test
# (tests/editors/vscode): Chromium, and what code-server's install needs (libkrb5-dev for a native
# module it compiles, ripgrep, see prime_ripgrep_cache).
apt_packages=(build-essential cmake ninja-build pkg-config git ca-certificates
              libboost-dev nlohmann-json3-dev doctest-dev libpcre2-dev libutf8proc-dev
              clang libclang-rt-14-dev python3 neovim
              chromium libkrb5-dev ripgrep)
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

# code-server (tests/editors/vscode) runs VS Code's own install, where @vscode/ripgrep downloads rg
# from GitHub. It first looks in its download cache; we put Debian's rg there, so installing needs
# only the npm registry. The names are those of @vscode/ripgrep 1.15.11 (rg release v13.0.0-10),
# the version code-server 4.100.3 pins; a code-server upgrade may need them changed.
prime_ripgrep_cache() {
  local target
  case "$(uname -m)" in
    x86_64) target=x86_64-unknown-linux-musl ;;
    aarch64) target=aarch64-unknown-linux-musl ;;
    *) return 0 ;;
  esac
  local cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-1.15.11"
  local archive="$cache/ripgrep-v13.0.0-10-$target.tar.gz"
  [ -s "$archive" ] && return 0
  local staging
  staging=$(mktemp -d)
  cp "$(command -v rg)" "$staging/rg"
  mkdir -p "$cache"
  tar czf "$archive" -C "$staging" rg
  rm -rf "$staging"
}

# npm packages, pinned by each folder's package-lock.json. Lock files record no download
# addresses; npm ci is skipped when node_modules already matches the lock (a stamp with the
# lock's hash, written after a successful npm ci).
npm config set omit-lockfile-registry-resolved true >/dev/null 2>&1 || true
for dir in grammars tests/integration tests/tokenizer editors/vscode tests/editors/vscode; do
  [ -f "$dir/package-lock.json" ] || continue
  stamp="$dir/node_modules/.ghostline-lock-sha"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "npm ci in $dir"
    if [ "$dir" = tests/editors/vscode ]; then
      # code-server's postinstall runs npm install inside itself: as root it wants unsafe-perm,
      # and one native module's script runs `npx node-gyp`, which must not stop to ask.
      prime_ripgrep_cache
      (cd "$dir" && npm_config_unsafe_perm=true npm_config_yes=true npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    else
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
    echo "$want" > "$stamp"
  fi
done

# Neovim 0.12 for the plugin's native path (vim.lsp.inline_completion; tests/editors/nvim). Debian
# stable ships 0.7; 0.12 is a Debian package only in testing (forky), built against a newer glibc.
# So it is not installed into the system: apt-get download (this machine's own Debian mirror, its
# keyring checks the signatures) fetches the pinned neovim and the libraries it needs, glibc
# included, and they are unpacked under $nvim_native_prefix/root; bin/nvim runs that nvim with that
# glibc's loader and libraries and that runtime (processes it starts get the system's as usual).
# A version gone from forky makes this step fail loudly; the nvim012.* tests then skip.
nvim_native_version=0.12.4-1
nvim_native_prefix=/opt/ghostline/nvim-0.12
install_nvim_native() {
  local stamp="$nvim_native_prefix/VERSION"
  [ "$(cat "$stamp" 2>/dev/null)" = "$nvim_native_version" ] && [ -x "$nvim_native_prefix/bin/nvim" ] && return 0
  local triplet uri codename work
  triplet=$(gcc -print-multiarch)
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  uri=$(apt-get indextargets --format '$(REPO_URI)|$(CODENAME)|$(ORIGIN)' 'Created-By: Packages' |
        awk -F'|' -v c="$codename" '$2 == c && $3 == "Debian" { print $1; exit }')
  if [ -z "$uri" ]; then log "no Debian mirror configured: Neovim $nvim_native_version not installed"; return 1; fi
  work=$(mktemp -d)
  chmod 755 "$work"  # apt downloads as _apt
  mkdir -p "$work/lists/partial" "$work/debs" "$work/root"
  echo "deb $uri forky main" > "$work/sources.list"
  local apt_opts=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=-
                  -o Dir::State::Lists="$work/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
                  -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
  log "fetching Neovim $nvim_native_version (Debian forky) into $nvim_native_prefix"
  if ! as_root apt-get "${apt_opts[@]}" update -qq; then rm -rf "$work"; return 1; fi
  local deps
  deps=$(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
           --no-breaks --no-replaces --no-enhances "neovim=$nvim_native_version" | grep -v '^ ' | grep -v '^<' |
         grep -vx -e neovim -e neovim-runtime | sort -u)
  if ! (cd "$work/debs" && as_root apt-get "${apt_opts[@]}" download -qq \
          "neovim=$nvim_native_version" "neovim-runtime=$nvim_native_version" $deps); then
    log "Neovim $nvim_native_version is not in Debian forky any more: update nvim_native_version in tools/setup.sh"
    rm -rf "$work"
    return 1
  fi
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
  local loader
  loader=$(cd "$work/root" && ls usr/lib/"$triplet"/ld-linux*.so.* 2>/dev/null | head -1)
  [ -n "$loader" ] && [ -x "$work/root/usr/bin/nvim" ] || { log "unpacked Neovim lacks nvim or the loader"; rm -rf "$work"; return 1; }
  as_root rm -rf "$nvim_native_prefix"
  as_root mkdir -p "$nvim_native_prefix/bin"
  as_root cp -a "$work/root" "$nvim_native_prefix/root"
  as_root tee "$nvim_native_prefix/bin/nvim" >/dev/null <<EOF
#!/bin/sh
# Neovim $nvim_native_version from Debian forky with its own glibc (written by tools/setup.sh).
r=$nvim_native_prefix/root
VIMRUNTIME=\$r/usr/share/nvim/runtime VIM=\$r/usr/share/nvim exec \$r/$loader \\
  --library-path \$r/usr/lib/$triplet:\$r/lib/$triplet \$r/usr/bin/nvim "\$@"
EOF
  as_root chmod 755 "$nvim_native_prefix/bin/nvim"
  rm -rf "$work"
  "$nvim_native_prefix/bin/nvim" --version | head -1 | grep -q "^NVIM v${nvim_native_version%-*}$" ||
    { log "the unpacked Neovim does not run"; return 1; }
  echo "$nvim_native_version" | as_root tee "$stamp" >/dev/null
}
install_nvim_native || log "WARNING: Neovim $nvim_native_version not installed; the nvim012.* tests will skip"

[ "${1:-}" = "--no-build" ] && exit 0

jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -f build/CMakeCache.txt ]; then
  log "configuring build/"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${GHOSTLINE_CMAKE_ARGS:-} >/dev/null
fi
log "building (-j$jobs)"
cmake --build build -j"$jobs"
