"""Load balancing with haproxy (``loadbalancer`` bags): only its health check so far."""
