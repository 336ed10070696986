"""Netfilter: NAT, ACLs, public IPs' firewall and the router's own openings: one nft table."""
