#!/bin/sh
# Installs whichever Debian packages in the given list files are missing (idempotent; sudo
# when not root). Usage: scripts/deps.sh scripts/deps.txt [more lists]
set -e
want=$(cat "$@" | sed 's/#.*//' | tr -s ' \n' '\n' | grep -v '^$' || true)
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -q --no-install-recommends $missing
