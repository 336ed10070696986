"""Network usage accounting: byte counters per public link in the netfilter
table, and CloudStack's ``vpc_netusage.sh`` and ``netusage.sh`` that the
usage server's poll reads them through."""
