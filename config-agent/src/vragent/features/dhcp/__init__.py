"""DHCP and DNS for the VMs: dnsmasq, from the ``dhcpentry`` bags and the tiers."""
