#!/bin/sh
# udhcpc event script (busybox-static ships none).
# shellcheck disable=SC2154 # udhcpc sets interface, ip, mask, router
case $1 in
deconfig) ip -4 addr flush dev "$interface" ;;
bound | renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
	# the lease's DNS servers, for rigor-init's /etc/resolv.conf
	# shellcheck disable=SC2086 # one per word
	printf '%s\n' $dns >/run/resolv.dhcp
	;;
esac
exit 0
