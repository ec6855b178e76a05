#!/bin/busybox sh
# PID 1 of the browser VM's guest (scripts/build_v86_guest.sh): loads v86's
# NE2000 driver, gets an address from the netisle session's DHCP server,
# serves a TCP echo on port 7 and a web page on port 80, and prints
# NETISLE-GUEST markers on the serial console (the page and the tests read them).
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
up() { cut -d' ' -f1 /proc/uptime; }
echo "NETISLE-GUEST booted at $(up) s"
insmod /8390.ko
insmod /ne2k-pci.ko || echo "NETISLE-GUEST insmod-failed"
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
ip link set eth0 up
echo "NETISLE-GUEST link-up $(cat /sys/class/net/eth0/address) at $(up) s"
hostname v86-guest
until udhcpc -i eth0 -n -q -t 5 -T 2 -x hostname:v86-guest -s /udhcpc.sh; do
  echo "NETISLE-GUEST dhcp-retry"
done
echo "NETISLE-GUEST dhcp-ok $(ip -4 -o addr show dev eth0 | awk '{print $4}') at $(up) s"
nc -ll -p 7 -e cat &
httpd -p 80 -h /www
echo "NETISLE-GUEST ready: echo on 7, http on 80"
# A shell on the console for whoever types into the page's terminal.
while true; do setsid -c sh </dev/ttyS0 >/dev/ttyS0 2>&1 || sleep 1; done
