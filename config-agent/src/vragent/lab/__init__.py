"""A lab in network namespaces: one router, guest tiers with a VM each, an outside host.

Used by ``make demo`` and by the integration tests. Everything it creates is
named from one prefix and removed by ``Lab.destroy``.
"""
