"""The services tests' appliance: a sample-VPC router with supervisord, the
resident agent and its daemons, the VMs' DHCP entries applied."""

from ..services.conftest import Appliance, appliance

__all__ = ["Appliance", "appliance"]
