"""Kernel settings the router needs (forwarding, rp_filter…)."""
