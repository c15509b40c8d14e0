#!/bin/sh
# make demo: one epoch of the seed CNN on Fashion-MNIST (examples/fashion_cnn.lua): a progress
# bar, the test accuracy (checked: above 85%), the loss curve drawn in the terminal and written
# to build/loss.png.
cd "$(dirname "$0")/.." || exit 2
exec build/tide examples/fashion_cnn.lua --epochs 1 --plot build/loss.png
