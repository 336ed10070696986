"""Load balancing with haproxy, from the ``loadbalancer`` bag."""
