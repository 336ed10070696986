"""Names the command line offers, kept free of heavy imports: ``vragent``
starts in milliseconds when it only forwards a command to the resident
agent. tests/unit/test_names.py checks them against the models and the
subsystem registry."""

BAG_TYPES = ("cmdline", "dhcpentry", "firewallrules", "forwardrules", "guestnetwork",
             "ipaliases", "ips", "monitorservice", "networkacl", "staticnatrules",
             "staticroutes", "vmdata", "vmpassword")
SUBSYSTEMS = ("sysctl", "netfilter", "interfaces", "routes", "conntrack", "vrrp", "dhcp",
              "vmdata")
