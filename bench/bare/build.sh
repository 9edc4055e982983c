#!/bin/sh
# Builds bench/bare/bare_net.cc (the bare oneDNN network benchmark) into build/bare_net.
# Standalone: Debian's libdnnl-dev 2.6 (OpenMP runtime), no Node, no addon code.
#   bench/bare/build.sh [output path]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build/bare_net}
mkdir -p "$(dirname "$out")"
${CXX:-g++} -O3 -march=x86-64-v2 -std=c++17 -fopenmp -Wall -Wextra -o "$out.tmp" "$here/bare_net.cc" -ldnnl
mv "$out.tmp" "$out"
echo "bare_net: built $out"
