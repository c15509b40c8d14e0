#!/bin/sh
# Draws the Jupyter kernelspec's logos (vm/kernel/logo-32x32.png, logo-64x64.png): a tide's
# wave, with gnuplot's pngcairo. The PNGs are committed; run this after changing the drawing.
cd "$(dirname "$0")/.." || exit 1
for s in 32 64; do
    gnuplot -e "set terminal pngcairo transparent size $s,$s; set output 'vm/kernel/logo-${s}x${s}.png';
      unset border; unset tics; unset key; set margins 0,0,0,0; set xrange [0:2*pi]; set yrange [-1.6:1.6];
      set object 1 circle at pi,0 size 3.1 fc rgb '#1f4e79' fs solid noborder behind;
      plot sin(x)*0.7 with filledcurves y=-1.6 lc rgb '#7fc8f8', sin(x+1)*0.45-0.35 with filledcurves y=-1.6 lc rgb '#ffffff'"
done
