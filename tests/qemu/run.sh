#!/usr/bin/env bash
# The buffer manager on a real kernel, under QEMU: boots Debian 12's 6.1
# kernel with the static `snowfall` binary as /init, which loads the
# modules, runs the buffer manager's scenarios on every memory backend
# present and powers off. PASS or FAIL is read from the serial console;
# a timeout is a failure, and so is any kernel complaint on the console
# (a WARNING, BUG, Oops, panic or call trace), even after a PASS: the
# kernel logs at warning level (loglevel=5, not `quiet`) and a WARN panics
# it (panic_on_warn=1), after printing the warning and its call trace.
#
#   EXMAP_MODULES=DIR tests/qemu/run.sh [path/to/snowfall]
#
# DIR holds exmap.ko and memory_pool.ko built for the guest kernel (this
# project never contains them, nor anything that fetches or builds them:
# build them yourself against Debian's linux-headers for the ABI this
# script prints). Without EXMAP_MODULES the exmap scenarios are skipped,
# with a message saying so, and the guest still runs the madvise and
# emulated-exmap scenarios (which is what CI does).
#
# Needs apt (Debian 12): qemu-system-x86, cpio, kmod, xz-utils, and
# `apt-get download` of the kernel image (cached under target/qemu).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${1:-target/release/snowfall}
cache=${SNOWFALL_QEMU_CACHE:-target/qemu}
timeout_s=${SNOWFALL_QEMU_TIMEOUT:-600}

say() { echo "qemu: $*"; }
fail() { echo "qemu: FAIL: $*" >&2; exit 1; }

[ -x "$bin" ] || fail "no binary at $bin (cargo build --release first)"

# apt's package lists (a fresh machine may have none).
apt-cache show linux-headers-amd64 >/dev/null 2>&1 || apt-get update -q >/dev/null

need=()
for tool in qemu-system-x86_64:qemu-system-x86 cpio:cpio modinfo:kmod xz:xz-utils; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# The newest Debian 12 kernel ABI the mirror has (old ones get dropped).
abi=$(apt-cache depends linux-headers-amd64 | awk '/Depends: linux-headers-6/{print $2}' | sed 's/^linux-headers-//')
[ -n "$abi" ] || fail "cannot find Debian's linux-headers-amd64 dependency (apt-get update?)"
say "guest kernel $abi"

kdir=$cache/$abi
if [ ! -f "$kdir/vmlinuz" ]; then
  mkdir -p "$kdir/deb"
  (cd "$kdir/deb" && apt-get download -q "linux-image-$abi" >/dev/null) || fail "cannot download linux-image-$abi"
  dpkg-deb -x "$kdir"/deb/linux-image-*.deb "$kdir/root"
  cp "$kdir/root/boot/vmlinuz-$abi" "$kdir/vmlinuz"
fi

# The initramfs: /init, the modules, their load order.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/modules"
cp "$bin" "$work/root/init"

# A module from the kernel package, decompressed if needed.
add_kernel_module() {
  local name=$1 found
  found=$(find "$kdir/root/lib/modules/$abi" -name "$name.ko*" | head -n 1)
  [ -n "$found" ] || fail "module $name not in linux-image-$abi"
  case "$found" in
    *.xz) xz -dc "$found" >"$work/root/modules/$name.ko" ;;
    *.zst) zstd -dqc "$found" >"$work/root/modules/$name.ko" ;;
    *) cp "$found" "$work/root/modules/$name.ko" ;;
  esac
}
# A 32 MiB RAM disk: the block device for exmap's READ path.
add_kernel_module brd
echo "brd.ko rd_nr=1 rd_size=32768" >"$work/root/modules/order"

# loglevel=5: the console shows KERN_WARNING and worse (WARN() prints at
# that level, so `quiet` and loglevel=4 hide it) but not the boot chatter.
# printk.time=1: every kernel line starts with `[  seconds.micros] `, which
# is how kernel lines are told from the guest's own output below.
# panic_on_warn=1 (with oops=panic and panic=-1): a kernel warning or oops
# ends the run at once, so the guest cannot report PASS after one.
cmdline="console=ttyS0 loglevel=5 printk.time=1 panic=-1 oops=panic panic_on_warn=1 SNOWFALL_LOG=info"
if [ -n "${EXMAP_MODULES:-}" ]; then
  for m in memory_pool exmap; do
    [ -f "$EXMAP_MODULES/$m.ko" ] || fail "EXMAP_MODULES=$EXMAP_MODULES has no $m.ko"
    magic=$(modinfo -F vermagic "$EXMAP_MODULES/$m.ko" | awk '{print $1}')
    [ "$magic" = "$abi" ] || fail "$m.ko was built for kernel $magic, the guest runs $abi: rebuild it against linux-headers-$abi"
    cp "$EXMAP_MODULES/$m.ko" "$work/root/modules/"
    echo "$m.ko" >>"$work/root/modules/order"
  done
  cmdline="$cmdline SNOWFALL_EXMAP=required"
  say "exmap modules from $EXMAP_MODULES (vermagic $abi)"
else
  say "exmap: SKIPPED: EXMAP_MODULES is not set (a directory with exmap.ko and memory_pool.ko built for $abi);"
  say "running the madvise and emulated-exmap scenarios only"
fi
(cd "$work/root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# KVM if it is usable here, else software emulation. A paravirtual KVM
# (kvm_pvm) cannot boot stock kernels.
accel=tcg
if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then
  accel=kvm
fi

boot() {
  say "booting with -accel $1 (timeout ${timeout_s}s)"
  timeout "$timeout_s" qemu-system-x86_64 -accel "$1" -cpu max -smp 2 -m 1024 -nographic -no-reboot \
    -kernel "$kdir/vmlinuz" -initrd "$work/initrd.gz" -append "$cmdline -- qemu-guest" \
    </dev/null 2>&1 | tee "$work/console.log" || true
}

boot "$accel"
if [ "$accel" = kvm ] && ! grep -q "SNOWFALL-QEMU:" "$work/console.log"; then
  say "KVM produced no result; falling back to TCG"
  boot tcg
fi

log=${SNOWFALL_QEMU_LOG:-$cache/console.log}
cp "$work/console.log" "$log"

# Kernel complaints. Only kernel lines count: they carry printk's timestamp
# `[    12.345678] ` (a closing bracket right after the microseconds), while
# snowfall's log lines read `[  12.345678 WARN  1 target] msg` and its other
# output has no timestamp, so nothing the guest prints can match. The
# timestamp may follow guest output on the same console line (the serial
# console interleaves), hence no anchor at the line start. Not matched on
# purpose: the taint notices of loading an out-of-tree, unsigned module
# ("loading out-of-tree module taints kernel"), which every exmap boot has.
stamp='\[ *[0-9]+\.[0-9]{6}\] '
complaint="$stamp("
complaint+='WARNING: CPU|'                       # WARN(), WARN_ON_ONCE()
complaint+='([a-z_]+: )?BUG: |kernel BUG at |'  # BUG: ..., watchdog: BUG: soft lockup, BUG_ON()
complaint+='Oops|.*\[#[0-9]+\]( |$)|'          # oops, general protection fault, invalid opcode: 0000 [#1]
complaint+='Kernel panic|'
complaint+=' *Call Trace:|.*Tainted: |'          # stack dumps (hung tasks, RCU stalls too)
complaint+='INFO: task .* blocked for more than|rcu: INFO: '
complaint+=')'
trouble=$(tr -d '\r' <"$work/console.log" | grep -E -m 20 "$complaint" || true)
if [ -n "$trouble" ]; then
  first=$(head -n 1 <<<"$trouble")
  n=$(grep -c . <<<"$trouble")
  outcome=$(grep -o -m 1 "SNOWFALL-QEMU: [A-Z]*" "$work/console.log" || echo "no result from the guest")
  echo "qemu: kernel complaint lines on the console ($n, at most 20 shown):" >&2
  sed 's/^/qemu:   /' <<<"$trouble" >&2
  fail "the kernel complained: \"$first\" (guest: $outcome; console log: $log)"
fi

if grep -q "SNOWFALL-QEMU: PASS" "$work/console.log"; then
  say "PASS, no kernel warnings (console log: $log)"
elif grep -q "SNOWFALL-QEMU: FAIL" "$work/console.log"; then
  fail "the guest reported a failure (console log: $log)"
else
  fail "no result from the guest: timeout or crash (console log: $log)"
fi
