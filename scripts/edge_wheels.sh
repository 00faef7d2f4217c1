#!/bin/sh
# Which pilotopt-edge runtime extras resolve to aarch64 wheels for the Pythons of Raspberry Pi OS
# (3.11, glibc 2.36) and Jetson / Ubuntu (3.10, glibc 2.31-2.35): first with the manylinux2014 tag
# alone, then with the glibc tags those devices accept. Needs the package index; writes nothing
# outside a temporary folder. Usage: scripts/edge_wheels.sh [.venv/bin/pip]
set -u
PIP=${1:-.venv/bin/pip}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$PIP wheel --no-deps --no-build-isolation -q ./edge -w "$tmp/whl" >/dev/null 2>&1 || { echo "cannot build ./edge"; exit 1; }
for tags in "manylinux2014_aarch64" "manylinux2014_aarch64 manylinux_2_27_aarch64 manylinux_2_28_aarch64 manylinux_2_31_aarch64"; do
  plats=""; for t in $tags; do plats="$plats --platform $t"; done
  for py in 3.10 3.11; do
    for extra in litert onnxruntime openvino; do
      d="$tmp/$py-$extra-$(echo "$tags" | wc -w)"
      if $PIP download -q --only-binary=:all: $plats --python-version $py -d "$d" --find-links "$tmp/whl" \
          "pilotopt-edge[$extra]" >/dev/null 2>&1; then
        got=$(ls "$d" | grep -iE "^(ai_edge_litert|onnxruntime|openvino)-" | cut -d- -f1-2 | tr '\n' ' ')
        echo "python $py, tags [$tags]: [$extra] resolves: $got"
      else
        echo "python $py, tags [$tags]: [$extra] does not resolve"
      fi
    done
  done
done
