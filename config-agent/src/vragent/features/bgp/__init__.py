"""BGP with FRR (bgpd, zebra) from the ``bgppeers`` bag."""
