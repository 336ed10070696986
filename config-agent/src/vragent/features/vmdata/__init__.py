"""VM metadata, user data and passwords, served by the ``metadata`` service."""
