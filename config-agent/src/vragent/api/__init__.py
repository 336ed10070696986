"""The resident agent's API: the command queue, the HTTP API, its client.

Kept import-free: ``api.client`` is what a forwarded CLI command loads.
"""
