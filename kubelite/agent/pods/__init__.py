"""The node agent's pods: `manager.PodManager` runs one `worker.PodWorker` per pod bound to the node.

`status` computes the reported pod status (pure), `backoff` the CrashLoopBackOff delays, `containers`
the per-container bookkeeping, runtime configs and adoption after a restart, `probing` wires probes to
a container attempt, `writer` writes status and deletes finished pods; `env`, `probes` and `hooks`
resolve environments, run probes and run lifecycle hooks.
"""
