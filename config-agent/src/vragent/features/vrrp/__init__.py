"""VRRP: keepalived elects the pair's master and moves the shared addresses."""
