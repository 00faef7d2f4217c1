#!/usr/bin/env bash
# An EMULATED arm64 (aarch64) device on an x86 host, for running the edge package (edge/, pilotopt_edge:
# NumPy + ONNX Runtime / LiteRT) "on the car" without one: a Debian bookworm arm64 root (debootstrap's
# first stage only, no binfmt_misc needed) whose python3.11 runs under QEMU user mode, with aarch64
# wheels of the project's pins and the edge package in DEST/root/opt/pilotopt-edge/site.
#
#   scripts/arm64_target.sh [DEST]        (default: .arm64-target in the repository; `make arm64-target`)
#
# Needs root, qemu-user-static, debootstrap (Debian packages) and the repository's .venv (its pip fetches
# the aarch64 wheels). Writes DEST/python, the device's python: an executable wrapper that runs
#   qemu-aarch64-static -cpu $ARM64_CPU -L DEST/root DEST/root/usr/bin/python3.11 "$@"
# with PYTHONPATH=the site folder, from any directory (e.g. `ssh host DEST/python -m pilotopt_edge.cli check
# DIR`). Host paths outside DEST/root (deploy folders, /tmp/...) are seen as they are, except where the same
# path exists inside DEST/root (QEMU's -L looks there first: that is how the device gets its own
# /proc/cpuinfo). The wrapper finds DEST from its own path, so DEST can be moved as a whole.
# Idempotent: a finished device (DEST/.built matches the pins) is only re-checked; a changed edge/ source is
# re-installed (seconds); anything else builds DEST.partial and renames it over DEST at the end, so a killed
# build never leaves a DEST that looks finished. Overrides: ARM64_CPU (below), MIRROR, NUMPY_VERSION,
# ONNXRUNTIME_VERSION, LITERT_VERSION, HOST_PY.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=$(realpath -m "${1:-$REPO/.arm64-target}")
HOST_PY=${HOST_PY:-$REPO/.venv/bin/python}
SUITE=bookworm
# The emulated CPU: cortex-a76 (Raspberry Pi 5; ARMv8.2 + dotprod + fp16) or cortex-a72 (Raspberry Pi 4;
# ARMv8.0). Never QEMU's default `max`: QEMU 7.2's SME emulation makes LiteRT int8 models compute wrong
# (v off by ~10 m/s; `pilotopt-edge check` fails; right with sme=off), and SIGILL follows any mismatch
# between the CPU QEMU emulates and the one ROOT/proc/cpuinfo names (cpuinfo trusts the MIDR for dotprod).
ARM64_CPU=${ARM64_CPU:-cortex-a76}
case "$ARM64_CPU" in
  cortex-a76) MIDR_VARIANT=0x4 MIDR_PART=0xd0b MIDR_REV=1
              CPU_FEATURES="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
  cortex-a72) MIDR_VARIANT=0x0 MIDR_PART=0xd08 MIDR_REV=3 CPU_FEATURES="fp asimd evtstrm crc32 cpuid" ;;
  *) echo "ARM64_CPU must be cortex-a76 or cortex-a72" >&2; exit 1 ;;
esac
# bookworm's glibc is 2.36: wheels tagged manylinux2014 / manylinux_2_17 .. 2_36 run on it (each tag
# named: pip does not expand a --platform tag to the older glibc versions)
PLATFORMS=(--platform manylinux2014_aarch64)
for v in $(seq 17 36); do PLATFORMS+=(--platform "manylinux_2_${v}_aarch64"); done
QEMU=$(command -v qemu-aarch64-static || true)

say() { printf '[arm64-target] %s\n' "$*"; }
die() { printf '[arm64-target] ERROR: %s\n' "$*" >&2; exit 1; }

[ -n "$QEMU" ] || die "qemu-aarch64-static not found: make arm64-target (apt-get install qemu-user-static)"
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || die "debootstrap not found: make arm64-target"
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
[ -x "$HOST_PY" ] || die "$HOST_PY not found: make setup first (its pip downloads the aarch64 wheels)"
export PATH="$PATH:/usr/sbin:/sbin"

# The mirror the host's apt uses for the main archive (debootstrap gets the same packages through it).
host_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${MIRROR:-$(host_mirror)}

# The pins: the project's own (pyproject.toml, any dependency list), as the host venv has them.
pin() {
  "$HOST_PY" - "$REPO/pyproject.toml" "$1" <<'EOF'
import re, sys, tomllib
proj = tomllib.load(open(sys.argv[1], "rb"))["project"]
lists = [proj.get("dependencies", [])] + list(proj.get("optional-dependencies", {}).values())
for dep in (d for lst in lists for d in lst):
    m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;,]+)\s*", dep)
    if m and re.sub(r"[-_.]+", "-", m[1]).lower() == sys.argv[2]:
        print(m[2]); break
else:
    sys.exit(f"no == pin for {sys.argv[2]} in {sys.argv[1]}")
EOF
}
NUMPY_VERSION=${NUMPY_VERSION:-$(pin numpy)}
ONNXRUNTIME_VERSION=${ONNXRUNTIME_VERSION:-$(pin onnxruntime)}
LITERT_VERSION=${LITERT_VERSION:-$(pin ai-edge-litert)}

SPEC="wrapper=2 cpu=$ARM64_CPU suite=$SUITE mirror=$MIRROR numpy==$NUMPY_VERSION onnxruntime==$ONNXRUNTIME_VERSION ai-edge-litert==$LITERT_VERSION"
edge_hash() { (cd "$REPO/edge" && find pyproject.toml src -name '*.py' -o -name pyproject.toml | grep -v __pycache__ \
  | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16); }
EDGE_HASH=$(edge_hash)
SITE_REL=root/opt/pilotopt-edge/site

# The edge package (pure Python, no torch/TF) into SITE, built from edge/ with the host's setuptools.
install_edge() {  # $1: the device folder
  local site="$1/$SITE_REL" tmp
  tmp=$(mktemp -d "$1/.edge.XXXXXX")
  "$HOST_PY" -m pip install -qq --disable-pip-version-check --no-deps --no-build-isolation \
    --target "$tmp" "$REPO/edge"
  rm -rf "$tmp/bin" "$site"/pilotopt_edge "$site"/pilotopt_edge-*.dist-info
  mv "$tmp"/pilotopt_edge "$tmp"/pilotopt_edge-*.dist-info "$site"/
  rm -rf "$tmp"
  echo "$EDGE_HASH" >"$1/.edge-hash"
}

# One line: the wrapper runs the arm64 python (from /, as over ssh) and imports what the edge package uses.
check_device() {
  (cd / && "$DEST/python" -m pilotopt_edge.cli --help >/dev/null) || die "$DEST/python -m pilotopt_edge.cli --help failed"
  (cd / && "$DEST/python" -c '
import platform, sys, numpy, onnxruntime, ai_edge_litert, ai_edge_litert.interpreter, pilotopt_edge
from importlib.metadata import version
edge = version("pilotopt-edge")
print(f"machine={platform.machine()} python={platform.python_version()} numpy={numpy.__version__} "
      f"onnxruntime={onnxruntime.__version__} ai_edge_litert={ai_edge_litert.__version__} pilotopt_edge={edge}")') || die "the device's python cannot import its packages"
}

finish() {
  say "device: $DEST ($(du -sh "$DEST" | cut -f1))"
  say "wrapper: $DEST/python"
  local line
  line=$(check_device)
  say "check: $line"
}

if [ -f "$DEST/.built" ] && [ "$(cat "$DEST/.built")" = "$SPEC" ] && [ -x "$DEST/python" ]; then
  say "already built ($SPEC)"
  if [ "$(cat "$DEST/.edge-hash" 2>/dev/null)" != "$EDGE_HASH" ]; then
    say "edge/ changed: reinstalling pilotopt_edge"
    rm -f "$DEST/.edge-hash"
    install_edge "$DEST"
  fi
  finish
  exit 0
fi

[ "$(id -u)" = 0 ] || die "debootstrap needs root"
WORK="$DEST.partial"
say "building $DEST ($SPEC) in $WORK"
rm -rf "$WORK"
mkdir -p "$WORK"
cleanup() { [ -d "$WORK" ] && { say "build failed or interrupted: removing $WORK"; rm -rf "$WORK"; }; }
trap cleanup EXIT
ROOT="$WORK/root"
SECONDS=0

# 1. Debian bookworm arm64, first stage only: it downloads minbase + python3 and unpacks the required
# packages (its second stage would run arm64 maintainer scripts: needs binfmt_misc, which is not here).
say "1/5 debootstrap --foreign arm64 $SUITE from $MIRROR"
debootstrap --arch=arm64 --foreign --variant=minbase --include=python3,libstdc++6 \
  "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
say "    done (${SECONDS}s)"

# 2. The first stage unpacks only the Priority: required set; the rest (python3.11, its stdlib, libstdc++6
# ...) waits as .debs for the second stage. Unpack those too, the way debootstrap does (tar over the
# merged-/usr symlinks). No maintainer script has to run for python: it needs no configuration.
say "2/5 unpacking the base packages (python3.11, libstdc++6, ...) debootstrap leaves for its second stage"
n=0
while read -r pkg; do
  deb=$(awk -v p="$pkg" '$1==p {print $2; exit}' "$ROOT/debootstrap/debpaths")
  [ -n "$deb" ] || die "no .deb for $pkg in $ROOT/debootstrap/debpaths"
  dpkg-deb --fsys-tarfile "$ROOT/$deb" | tar -C "$ROOT" --keep-directory-symlink -xf -
  n=$((n + 1))
done < <(tr ' ' '\n' <"$ROOT/debootstrap/base" | grep -v '^$')
# ~90 MB of .debs and the arm64 Packages index: nothing installs them later (no second stage, no apt)
rm -f "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*_Packages
[ -x "$ROOT/usr/bin/python3.11" ] || die "python3.11 is not in the unpacked root"
say "    $n packages (${SECONDS}s)"

# An arm64 /proc/cpuinfo. QEMU's -L looks up every absolute path in ROOT first, and QEMU 7.2 (bookworm)
# passes the host's x86 /proc/cpuinfo through; ONNX Runtime's (and XNNPACK's) cpuinfo library finds no
# arm64 processor in it and `import onnxruntime` dies with SIGSEGV. So ROOT/proc (debootstrap makes it a
# symlink to /proc in a container) becomes a folder holding only cpuinfo: one $ARM64_CPU (the CPU the
# wrapper has QEMU emulate) per CPU, 256 of them or the host's possible count if more (so the tree still
# fits a bigger host; cpuinfo silently skips entries past the possible count). Every other /proc path is
# not in ROOT/proc, so QEMU gives the host's (/proc/self/..., /proc/meminfo).
say "    /proc/cpuinfo: $ARM64_CPU"
ncpu=$(( $(sed 's/.*[-,]//' /sys/devices/system/cpu/possible 2>/dev/null || echo 0) + 1 ))
[ "$ncpu" -ge 256 ] || ncpu=256
rm -rf "$ROOT/proc"
mkdir -m 755 "$ROOT/proc"
for ((i = 0; i < ncpu; i++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
    "$i" "$CPU_FEATURES" "$MIDR_VARIANT" "$MIDR_PART" "$MIDR_REV"
done >"$ROOT/proc/cpuinfo"

# 3. aarch64 wheels of the pins, with the host's pip. Importing onnxruntime and ai_edge_litert.interpreter
# needs NumPy only (their other Requires-Dist -- flatbuffers, packaging, protobuf, ml_dtypes, tqdm, ... --
# serve the converters and model tooling), so no dependency is installed that the device does not load.
SITE="$WORK/$SITE_REL"
mkdir -p "$SITE"
say "3/5 aarch64 wheels: numpy==$NUMPY_VERSION onnxruntime==$ONNXRUNTIME_VERSION ai-edge-litert==$LITERT_VERSION"
"$HOST_PY" -m pip install -qq --disable-pip-version-check --no-deps --only-binary=:all: "${PLATFORMS[@]}" \
  --python-version 3.11 --implementation cp --abi cp311 --target "$SITE" \
  "numpy==$NUMPY_VERSION" "onnxruntime==$ONNXRUNTIME_VERSION" "ai-edge-litert==$LITERT_VERSION"
rm -rf "$SITE/bin"  # console scripts with the host's shebang: nothing on the device runs them
say "    done (${SECONDS}s)"

say "4/5 the edge package (edge/ -> pilotopt_edge)"
install_edge "$WORK"

# 5. Byte-compile the stdlib with the host's 3.11 (.pyc is the same on every 3.11 and every arch; pip
# already compiled the site folder the same way): emulated starts then skip compiling, even as non-root.
say "5/5 byte-compiling the device's stdlib, writing the wrapper"
"$HOST_PY" -m compileall -q -j 1 -x '/(test|tests|idlelib|tkinter|lib2to3)/' "$ROOT/usr/lib/python3.11" >/dev/null \
  || say "    (some stdlib files did not compile: the device compiles them when it imports them)"
cat >"$WORK/python" <<EOF
#!/bin/sh
# The emulated arm64 device's python (scripts/arm64_target.sh): Debian bookworm python3.11 aarch64 under
# QEMU user mode as a $ARM64_CPU, with numpy, onnxruntime, ai_edge_litert and pilotopt_edge on its path.
here=\$(dirname "\$(readlink -f "\$0")")
root=\$here/root
unset PYTHONHOME PYTHONSTARTUP PYTHONEXECUTABLE
PILOTOPT_EDGE_EMULATED="qemu-aarch64 $ARM64_CPU" PYTHONPATH=\$root/opt/pilotopt-edge/site PYTHONNOUSERSITE=1 exec $QEMU -cpu $ARM64_CPU -L "\$root" "\$root/usr/bin/python3.11" "\$@"
EOF
chmod 755 "$WORK/python"
echo "$SPEC" >"$WORK/.built"

rm -rf "$DEST.old"
[ -e "$DEST" ] && mv "$DEST" "$DEST.old"
mv "$WORK" "$DEST"
trap - EXIT
rm -rf "$DEST.old"
say "built in ${SECONDS}s"
finish
