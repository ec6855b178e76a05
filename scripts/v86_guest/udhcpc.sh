#!/bin/busybox sh
# udhcpc event script of the browser VM's guest: applies the lease.
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    echo "NETISLE-GUEST lease ip=$ip mask=$mask router=$router dns=$dns";;
esac
exit 0
