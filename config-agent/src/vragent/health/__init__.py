"""CloudStack's router health checks (the ``monitorservice`` bag): the checks,
their runner and CloudStack's result files and output.

Not keepalived's track script, which is ``ha/health.py``.
"""
