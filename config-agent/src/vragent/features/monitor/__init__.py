"""CloudStack's router health checks (the ``monitorservice`` bag): the checks,
their runner and CloudStack's result files and output.

Not the pair's own fitness for mastership, which is ``ha/health.py`` (run by the
watchdog inside supervisord).
"""
