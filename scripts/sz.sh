#!/bin/sh
# Fails when a file in vm/, tensor/ or stdlib/ exceeds 800 lines (one concept per file).
cd "$(dirname "$0")/.." || exit 2
bad=$(find vm tensor stdlib -type f \( -name '*.c' -o -name '*.h' -o -name '*.def' -o -name '*.lua' \) \
      -exec wc -l {} + | awk '$2 != "total" && $1 > 800 {print "  " $2 ": " $1 " lines"}')
if [ -n "$bad" ]; then
    echo "files over 800 lines (split them by concept):"
    echo "$bad"
    exit 1
fi
