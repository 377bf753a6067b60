"""Local multi-node networks of real processes: the one process cluster, ports, network namespaces, delay line.

Used by ``localnet up``, the benchmarks and the e2e runner; it imports home and sim, never service, api or e2e.
"""
