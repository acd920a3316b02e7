"""Pod volumes on the node: materialised under ``<pods dir>/<uid>/volumes/<plugin>/<name>`` and bind-mounted
into containers (`manager.PodVolumes`, `mounts.container_mounts`)."""
