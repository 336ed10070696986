"""vragent: config agent of the redundant VPC router appliance."""

__version__ = "0.1.0"
