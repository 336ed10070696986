"""The management plane's way in: CloudStack's ssh port and the agent's API."""
