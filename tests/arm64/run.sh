#!/usr/bin/env bash
# The Pi side, executed: edgekit on a real arm64 Debian bookworm userland under qemu-user.
#
#   sudo tests/arm64/run.sh        (python3 dev.py arm64 runs it)
#
# Builds the root once (debootstrap, a venv with the wheels a Pi 4 installs: ai-edge-litert 2.3.0
# for CPython 3.11 aarch64, numpy, onnx, matplotlib) and caches it as a tarball in
# ~/.cache/edgekit (the key: this script's and pyproject.toml's hashes). Then it installs edgekit
# from the working tree into it and runs tests/arm64/check.py there as the Pi (EDGEKIT_BOARD=rpi4).
#
# The two traps that silently poison results under qemu 7.2 are handled: /proc/cpuinfo is a Pi 4's
# (tests/arm64/cpuinfo: Cortex-A72, CPU part 0xd08, features fp asimd evtstrm crc32 cpuid; with the
# host's x86 one LiteRT segfaults), and QEMU_CPU=cortex-a72 (qemu's default "max" CPU advertises
# extensions a Cortex-A72 lacks, with which XNNPACK gives wrong int8 outputs).
# Emulated inference is far slower than native (~60x as reported when this was first tried; not measured here): the figures it prints are this machine's, never a Pi's.
#
# Without root, qemu-user-static or binfmt_misc it says why and exits 0 (skipped); CI runs it when it can.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
CACHE=${EDGEKIT_CACHE:-$HOME/.cache/edgekit}
MIRROR=${EDGEKIT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# what the cached root holds: change RECIPE when the build below changes (pyproject.toml counts too)
RECIPE="debian bookworm arm64 minbase, python3 venv: ai-edge-litert==2.3.0 wheel pytest + pyproject deps; v2"
KEY=$( (echo "$RECIPE"; cat "$SRC/pyproject.toml") | sha256sum | cut -c1-12)
TARBALL="$CACHE/arm64-root-$KEY.tar.gz"

skip() { echo "arm64 check skipped: $*"; exit 0; }
step() { echo "[arm64 $(date +%H:%M:%S)] $*"; }

[ "$(uname -m)" = aarch64 ] && skip "this machine is aarch64 already: run the test suite directly"
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, mounts, binfmt_misc); run it with sudo"
if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null \
   || ! command -v update-binfmts >/dev/null; then
  step "installing qemu-user-static binfmt-support debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static binfmt-support debootstrap >/dev/null \
    || skip "could not install qemu-user-static, binfmt-support and debootstrap (apt-get failed)"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
    || skip "binfmt_misc cannot be mounted here (a container without the privilege?)"
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || skip "qemu-aarch64 is not registered with binfmt_misc"

WORK=$(mktemp -d /tmp/edgekit-arm64.XXXXXX)
ROOT="$WORK/root"
MOUNTS=()
cleanup() {
  for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
  if grep -q " $WORK/" /proc/mounts; then  # never delete through a mount (the root's /dev is this machine's)
    echo "arm64: $WORK still has mounts; left in place" >&2
  else
    rm -rf --one-file-system "$WORK"
  fi
}
trap cleanup EXIT
mountb() {  # what, where, mount options: mounted until the script ends
  [ -e "$2" ] || mkdir -p "$2"
  mount "${@:3}" "$1" "$2"
  MOUNTS+=("$2")
}
# EDGEKIT_FUZZ_TIMEOUT_S: the fuzz slice calls a case over 20 s a hang; under qemu-user (~60x) 1200 s
in_root() {
  chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/venv/bin:/usr/bin:/bin LANG=C.UTF-8 QEMU_CPU=cortex-a72 \
    EDGEKIT_ARM64_TESTS="${EDGEKIT_ARM64_TESTS:-}" EDGEKIT_FUZZ_TIMEOUT_S=1200 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 "$@"
}
mount_all() {
  mountb proc "$ROOT/proc" -t proc
  mountb "$HERE/cpuinfo" "$ROOT/proc/cpuinfo" --bind   # a Pi 4's, not this machine's (trap 1)
  mountb /dev "$ROOT/dev" --rbind   # /dev/pts too: the virtual boards serve on ptys
  mountb tmpfs "$ROOT/tmp" -t tmpfs
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"  # for pip, as this machine's
}

mkdir -p "$CACHE" "$ROOT"
if [ -f "$TARBALL" ]; then
  step "arm64 root from the cache ($TARBALL)"
  tar -xzf "$TARBALL" -C "$ROOT"
  mount_all
else
  step "building the arm64 root: debootstrap bookworm (a few minutes, once)"
  debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  mount_all
  step "a venv with the Pi's wheels (ai-edge-litert 2.3.0 and edgekit's dependencies)"
  in_root python3 -m venv /venv
  deps=$(python3 - "$SRC/pyproject.toml" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print(" ".join(d.replace(" ", "") for d in project["dependencies"] + ["pytest>=7"]))
EOF
)
  # shellcheck disable=SC2086
  in_root /venv/bin/pip install -q ai-edge-litert==2.3.0 wheel $deps
  step "caching the root in $TARBALL"
  (cd "$ROOT" && tar --exclude=./proc/* --exclude=./dev/* --exclude=./tmp/* -czf "$TARBALL.part" .) \
    && mv "$TARBALL.part" "$TARBALL"
fi

step "installing edgekit from the working tree"
mkdir -p "$ROOT/src"
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard 2>/dev/null | tar --null -T - -cf - || tar --exclude=.git --exclude=.venv* -cf - .) \
  | tar -xf - -C "$ROOT/src"
mkdir -p "$ROOT/src-data" && cp "$SRC/../shared/models/kws_ref_model.tflite" "$ROOT/src-data/" 2>/dev/null || true
in_root /venv/bin/pip install -q --no-deps --no-build-isolation /src >/dev/null
if [ -n "${EDGEKIT_ARM64_TESTS:-}" ]; then  # all (the whole suite) or named tests: the test extras' aarch64 wheels
  if [ -d "$SRC/../shared" ]; then  # the reference models and vendored sources, where the tests look (../shared)
    mountb "$(cd "$SRC/../shared" && pwd)" "$ROOT/shared" --bind -o ro
  fi
  step "installing the test extras for the whole suite"
  in_root /venv/bin/pip install -q "/src[test]" >/dev/null
  in_root /venv/bin/pip install -q --no-deps --no-build-isolation /src >/dev/null
fi
step "running tests/arm64/check.py as the Pi (EDGEKIT_BOARD=rpi4, QEMU_CPU=cortex-a72)"
status=0
in_root /usr/bin/env EDGEKIT_BOARD=rpi4 /venv/bin/python /src/tests/arm64/check.py --out /tmp/arm64.npz \
  --model /src-data/kws_ref_model.tflite || status=$?
if [ -f "$ROOT/tmp/arm64-tests.txt" ]; then cp "$ROOT/tmp/arm64-tests.txt" "${EDGEKIT_ARM64_LOG:-/tmp/arm64-tests.txt}"; fi
[ "$status" = 0 ] || exit "$status"
cp "$ROOT/tmp/arm64.npz" "$WORK/arm64.npz"
step "comparing the Pi's int8 outputs with this machine's LiteRT"
PY=${EDGEKIT_PYTHON:-$SRC/.venv/bin/python}
[ -x "$PY" ] || PY=python3
"$PY" -c "import edgekit, ai_edge_litert" 2>/dev/null || {
  echo "arm64: no Python with edgekit and LiteRT on this machine to compare with ($PY): run python3 dev.py test" \
       "first, or set EDGEKIT_PYTHON" >&2; exit 1; }
"$PY" "$HERE/check.py" --compare "$WORK/arm64.npz" --model "$ROOT/src-data/kws_ref_model.tflite"
step "done"
