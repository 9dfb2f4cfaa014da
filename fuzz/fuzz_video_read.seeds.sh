#!/bin/sh
# Seeds for fuzz_video_read: tiny files of every kind the reader meets, made by
# ffmpeg's command line into the folder $1 (a few hundred bytes to a few KB each).
set -eu
out=$1
mkdir -p "$out"
src="-f lavfi -i testsrc2=size=16x12:rate=8 -frames:v 3"
ff() { ffmpeg -v error -y $src "$@"; }
ff -c:v libx264 -preset ultrafast -pix_fmt yuv420p "$out/seed.mp4"
ff -c:v libvpx-vp9 -deadline realtime -pix_fmt yuv420p "$out/seed.webm"
ff "$out/seed.gif"
ff -frames:v 1 "$out/seed.png"
ff -frames:v 1 "$out/seed.jpg"
ff -frames:v 1 -c:v libwebp "$out/seed.webp"
