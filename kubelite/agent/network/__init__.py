"""Pod networking of the node agent: a network namespace, a veth on the node bridge and an address from the
node's pod CIDR per pod (as root), or the host network (without root)."""
