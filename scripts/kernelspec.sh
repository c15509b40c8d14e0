#!/bin/sh
# Writes tide's Jupyter kernelspec: scripts/kernelspec.sh DIR TIDE puts kernel.json (running
# TIDE --kernel) and the logos into DIR (e.g. ~/.local/share/jupyter/kernels/tide), where
# `jupyter console --kernel tide`, notebook and lab find it. Used by make install-kernel/install.
set -e
dir=$1 tide=$2
[ -n "$dir" ] && [ -n "$tide" ] || { echo "usage: $0 DIR TIDE" >&2; exit 2; }
src="$(cd "$(dirname "$0")/.." && pwd)/vm/kernel"
mkdir -p "$dir"
esc=$(printf '%s' "$tide" | sed 's/\\/\\\\/g; s/"/\\"/g')
cat >"$dir/kernel.json" <<JSON
{
  "argv": ["$esc", "--kernel", "{connection_file}"],
  "display_name": "tide (Lua 5.4)",
  "language": "lua",
  "interrupt_mode": "signal",
  "metadata": {"debugger": false}
}
JSON
cp "$src/logo-32x32.png" "$src/logo-64x64.png" "$dir/"
echo "kernelspec: $dir/kernel.json -> $tide"
