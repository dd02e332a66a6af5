#!/bin/sh
# run_nvim.sh NVIM ARGS...: runs NVIM ARGS..., or exits 77 (ctest: skipped) when NVIM is not an
# executable (the Neovim 0.12 that tools/setup.sh unpacks under /opt/ghostline may be missing).
nvim=$1
shift
if [ ! -x "$nvim" ]; then
  echo "skipped: no Neovim at $nvim (tools/setup.sh installs it)"
  exit 77
fi
exec "$nvim" "$@"
