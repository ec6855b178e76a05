#!/usr/bin/env bash
# Builds the guest of the browser VM page (examples/browser/v86.html): Debian's
# i386 kernel (linux-image-686) and a busybox-static initramfs, plus the
# BIOS images v86 boots with (Debian's seabios package). Nothing else can be
# downloaded here, so everything comes from Debian's archive.
#
#   scripts/build_v86_guest.sh [OUTDIR]      # default /var/cache/netisle-v86
#
# OUTDIR then holds bzImage, initrd.img (gzipped newc cpio), seabios.bin,
# vgabios.bin and a file named "package" naming the kernel package. The
# guest's /init loads the NE2000 driver (v86's network card), asks the
# session's DHCP server for an address, and starts a TCP echo server on
# port 7 and a web server on port 80 (busybox httpd), printing NETISLE-GUEST
# markers on the serial console.
#
# Needs dpkg's i386 architecture (added, with apt-get update, when run as
# root) and dpkg-deb; runs in a temporary directory; idempotent (skips the
# work when OUTDIR is complete, unless --force).
set -euo pipefail

force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
out=${1:-/var/cache/netisle-v86}
here=$(cd "$(dirname "$0")" && pwd)

if [ $force = 0 ] && [ -s "$out/bzImage" ] && [ -s "$out/initrd.img" ] &&
  [ -s "$out/seabios.bin" ] && [ -s "$out/vgabios.bin" ]; then
  echo "v86 guest already built in $out ($(cat "$out/package" 2>/dev/null))"
  exit 0
fi

if ! dpkg --print-foreign-architectures | grep -qx i386; then
  if [ "$(id -u)" = 0 ]; then
    dpkg --add-architecture i386
    apt-get update -qq
  else
    echo "build_v86_guest: dpkg has no i386 architecture; as root run:" >&2
    echo "  dpkg --add-architecture i386 && apt-get update" >&2
    exit 2
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
kernel_pkg() {
  apt-cache depends linux-image-686:i386 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
pkg=$(kernel_pkg)
if [ -z "$pkg" ]; then
  [ "$(id -u)" = 0 ] && apt-get update -qq
  pkg=$(kernel_pkg)
fi
[ -n "$pkg" ] || { echo "build_v86_guest: no linux-image-686:i386 in apt's lists" >&2; exit 1; }
if ! apt-get download -qq "$pkg" "busybox-static:i386" 2>/dev/null; then
  # The archive moved on since apt's lists were made: refresh them once.
  [ "$(id -u)" = 0 ] || { echo "build_v86_guest: apt-get download failed" >&2; exit 1; }
  apt-get update -qq
  pkg=$(kernel_pkg)
  apt-get download -qq "$pkg" "busybox-static:i386"
fi
bios_dir=/usr/share/seabios
if [ ! -s "$bios_dir/bios.bin" ] || [ ! -s "$bios_dir/vgabios-stdvga.bin" ]; then
  apt-get download -qq seabios 2>/dev/null
  dpkg-deb -x seabios_*.deb seabios
  bios_dir=$tmp/seabios/usr/share/seabios
fi
dpkg-deb -x linux-image-*.deb kernel
dpkg-deb -x busybox-static_*.deb busybox

root=$tmp/root
mkdir -p "$root"/{bin,proc,sys,dev,tmp,www,etc}
cp busybox/bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
for m in 8390 ne2k-pci; do
  f=$(find kernel/lib/modules -name "$m.ko*" | head -1)
  [ -n "$f" ] || { echo "build_v86_guest: no $m module in $pkg" >&2; exit 1; }
  case "$f" in
    *.xz) xz -dc "$f" >"$root/$m.ko" ;;
    *.zst) zstd -dqc "$f" >"$root/$m.ko" ;;
    *) cp "$f" "$root/$m.ko" ;;
  esac
done
cp "$here/v86_guest/init.sh" "$root/init"
cp "$here/v86_guest/udhcpc.sh" "$root/udhcpc.sh"
cp "$here/v86_guest/index.html" "$root/www/index.html"
chmod 755 "$root/init" "$root/udhcpc.sh" "$root/bin/busybox"

mkdir -p "$out"
bb=/bin/busybox
[ -x "$bb" ] || bb=$(command -v busybox)
(cd "$root" && find . | "$bb" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -9 >"$out/initrd.img.tmp"
cp kernel/boot/vmlinuz-* "$out/bzImage.tmp"
cp "$bios_dir/bios.bin" "$out/seabios.bin"
cp "$bios_dir/vgabios-stdvga.bin" "$out/vgabios.bin"
mv "$out/initrd.img.tmp" "$out/initrd.img"
mv "$out/bzImage.tmp" "$out/bzImage"
echo "$pkg" >"$out/package"
echo "v86 guest built in $out: $pkg ($(du -h "$out/bzImage" | cut -f1) kernel," \
  "$(du -h "$out/initrd.img" | cut -f1) initrd)"
