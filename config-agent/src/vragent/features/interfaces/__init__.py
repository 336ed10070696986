"""Interfaces: links up, MTUs and the router's own addresses."""
