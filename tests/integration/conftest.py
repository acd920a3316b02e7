from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from kubelite.testing.server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # the API alone: pods here are objects, nothing runs or reconciles them (tests/e2e has the running cluster)
    process = ServerProcess(
        Path(tmp_path_factory.mktemp("kubelite")), extra_args=["--disable-agent", "--disable-controllers"]
    ).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(server.kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()
