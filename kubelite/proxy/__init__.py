"""The service proxy: Services and EndpointSlices → nftables rules (root) or a userspace proxy (fallback).

`run_proxy(client, ProxyConfig(...))` is the entry point (kubelite.proxy.proxy); cluster DNS lives in
kubelite.proxy.dns.
"""
