"""The docker compose lab: the management server's side of a vragent pair."""
