"""pytest fixtures: a fresh simulator per test, and both SDK deployment clients pointed at it."""

# First: importing sim cleans the environment before dashscope is imported.
from sim import API_URL, KEY, SIM_URL, WORKSPACE, control  # isort: skip

import dashscope
import pytest


@pytest.fixture(autouse=True)
def fresh_simulator():
    """Each test starts from an empty simulator with its configured faults (none)."""
    if not SIM_URL:
        pytest.fail(
            "MODELSTUDIO_SIM_URL is not set: run this suite through "
            "`cargo test -p modelstudio-simulator --test sdk`, which starts the simulator"
        )
    control("POST", "reset")
    yield
    control("POST", "reset")


@pytest.fixture
def old():
    """Keyword arguments for the old client (`dashscope.Deployments`): per-call key and base."""
    return {"api_key": KEY, "base_address": API_URL}


@pytest.fixture
def new():
    """The new client (`dashscope.Client().deployments`), with the key's workspace, no retries."""
    client = dashscope.Client(
        api_key=KEY, base_url=API_URL, workspace=WORKSPACE, max_retries=0
    )
    with client:
        yield client.deployments


@pytest.fixture
def new_client_factory():
    """Makes more new clients (other keys, no workspace); closes them at the end."""
    made = []

    def make(**options):
        options.setdefault("api_key", KEY)
        options.setdefault("base_url", API_URL)
        options.setdefault("max_retries", 0)
        client = dashscope.Client(**options)
        made.append(client)
        return client.deployments

    yield make
    for client in made:
        client.close()
