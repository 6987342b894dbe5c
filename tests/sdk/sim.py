"""The simulator under test: its address, keys, and its control API (`/_simulator/`).

crates/simulator/tests/sdk.rs starts the simulator and runs this suite with MODELSTUDIO_SIM_URL
(http://127.0.0.1:PORT) and keys whose workspaces it fixed. Importing this module cleans the
environment first (conftest.py imports it before dashscope), so no real key, config file or base
URL can leak into the SDK.
"""

import json
import os
import tempfile
import time
import urllib.error
import urllib.request

# Before the SDK is imported: it reads its environment and ~/.dashscope at import or first use.
for _name in list(os.environ):
    if _name.startswith("DASHSCOPE_"):
        del os.environ[_name]
# An empty home, removed when the interpreter exits.
_home = tempfile.TemporaryDirectory(prefix="modelstudio-sdk-home-")
os.environ["HOME"] = _home.name
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

SIM_URL = os.environ.get("MODELSTUDIO_SIM_URL", "").rstrip("/")
API_URL = f"{SIM_URL}/api/v1"
# The keys and fixed workspaces sdk.rs gives the simulator (`--api-key KEY=WORKSPACE_ID`).
KEY = os.environ.get("MODELSTUDIO_SIM_KEY", "sk-sdk-a")
WORKSPACE = os.environ.get("MODELSTUDIO_SIM_WORKSPACE", "llm-sdka")
OTHER_KEY = os.environ.get("MODELSTUDIO_SIM_OTHER_KEY", "sk-sdk-b")
OTHER_WORKSPACE = os.environ.get("MODELSTUDIO_SIM_OTHER_WORKSPACE", "llm-sdkb")

# Every wait is bounded: polls stop after this many seconds.
POLL_SECONDS = 10

# Control calls bypass any proxy.
_control = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def control(method, path, body=None):
    """A call to the simulator's control API (`/_simulator/...`): the decoded JSON, or None."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{SIM_URL}/_simulator/{path}",
        data=data,
        method=method,
        headers={"content-type": "application/json"},
    )
    try:
        with _control.open(request, timeout=10) as response:
            text = response.read()
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} /_simulator/{path}: {e.code} {e.read()!r}") from e
    return json.loads(text) if text else None


def record(deployed_model):
    """The simulator's record of the live deployment named `deployed_model`."""
    live = [
        r
        for r in control("GET", "deployments")
        if r["deployed_model"] == deployed_model and not r["deleted"]
    ]
    assert live, f"the simulator has no live deployment {deployed_model}"
    return live[-1]


def set_state(deployed_model, **body):
    """POST /_simulator/deployments/{id}/state, e.g. finish_now=True or status="STOPPED"."""
    return control("POST", f"deployments/{record(deployed_model)['id']}/state", body)


def finish(deployed_model):
    """Ends the change in progress (PENDING, DEPLOYING, UPDATING, DELETING) now."""
    return set_state(deployed_model, finish_now=True)


def requests_since(seq):
    """The simulator's records of the API calls numbered `seq` and later."""
    return control("GET", f"requests?since={seq}")


def next_seq():
    """The number the next API call's record will have."""
    records = control("GET", "requests")
    return records[-1]["seq"] + 1 if records else 0


def poll(read, done, what):
    """Calls `read` until `done(value)`, for at most POLL_SECONDS; returns every value seen."""
    deadline = time.monotonic() + POLL_SECONDS
    seen = []
    while True:
        value = read()
        seen.append(value)
        if done(value):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {POLL_SECONDS} s; saw {seen}")
        time.sleep(0.05)
