#!/bin/sh
# make demo: until the training stack lands, a tensor + autograd tour that checks its result.
cd "$(dirname "$0")/.." || exit 2
exec build/tide examples/tensors.lua
