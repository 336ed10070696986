"""Routes: the tiers' and public links' routes, policy routing, and the ``staticroutes`` bag."""
