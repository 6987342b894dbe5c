"""Both deployment clients of the official Python SDK (dashscope 2.0.2) against the simulator.

The old client, `dashscope.Deployments`, returns errors as objects (status_code, code, message,
request_id) and sends X-DashScope-WorkSpace only when a call passes `workspace=`. The new one,
`dashscope.Client(...).deployments`, raises `dashscope.v2.errors` exceptions. Every operation and
every error code of the deployment routes is driven through both.
"""

import pytest
from dashscope import Deployments
from dashscope.v2.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

from sim import (
    KEY,
    OTHER_KEY,
    OTHER_WORKSPACE,
    WORKSPACE,
    control,
    finish,
    next_seq,
    poll,
    record,
    requests_since,
    set_state,
)

# The simulator's default deployable models and their base capacities (config.rs).
PLUS, TURBO, EMO = "qwen-plus", "qwen-turbo", "emo"


def assert_request_id(request_id):
    assert isinstance(request_id, str) and len(request_id) == 36, request_id


def assert_old_error(rsp, status_code, code):
    """The old client returns the error: HTTP status, code, a message and the request id."""
    assert (rsp.status_code, rsp.code) == (status_code, code), vars(rsp)
    assert rsp.message, vars(rsp)
    assert_request_id(rsp.request_id)
    assert rsp.output is None


def assert_new_error(info, cls, status_code, code):
    """The new client raised exactly `cls`, with the code, status and request id."""
    e = info.value
    assert type(e) is cls, f"{type(e).__name__}: {e}"
    assert (e.status_code, e.code) == (status_code, code), str(e)
    assert e.message, str(e)
    assert_request_id(e.request_id)
    # The body's request_id, repeated by the x-request-id header.
    assert e.headers.get("x-request-id") == e.request_id
    return e


# --- every operation, old client -----------------------------------------------------------


def test_old_client_create_get_scale_delete(old):
    rsp = Deployments.call(model=TURBO, capacity=2, suffix="old", **old)
    assert rsp.status_code == 200, vars(rsp)
    assert_request_id(rsp.request_id)
    name = rsp.output.deployed_model
    assert name == "qwen-turbo-old"
    assert (rsp.output.status, rsp.output.capacity, rsp.output.ready_capacity) == ("PENDING", 2, 0)
    assert rsp.output.workspace_id == WORKSPACE
    assert rsp.output.base_capacity == 2

    rsp = Deployments.get(name, **old)
    # PENDING for 1 s, then DEPLOYING for 1 s (sdk.rs): a slow machine may see either.
    assert rsp.status_code == 200, vars(rsp)
    assert rsp.output.status in {"PENDING", "DEPLOYING"}
    finish(name)
    rsp = Deployments.get(name, **old)
    assert (rsp.output.status, rsp.output.ready_capacity) == ("RUNNING", 2)

    rsp = Deployments.scale(name, 4, **old)
    assert rsp.status_code == 200, vars(rsp)
    assert (rsp.output.status, rsp.output.capacity, rsp.output.ready_capacity) == ("UPDATING", 4, 2)
    finish(name)
    rsp = Deployments.get(name, **old)
    assert (rsp.output.status, rsp.output.capacity, rsp.output.ready_capacity) == ("RUNNING", 4, 4)

    # Status only: DeploymentDelete's output is a CancelDeleteStatus.
    rsp = Deployments.delete(name, **old)
    assert rsp.status_code == 200, vars(rsp)
    assert_request_id(rsp.request_id)
    assert type(rsp.output).__name__ == "CancelDeleteStatus"
    assert rsp.output.status == "DELETING"
    # Again while DELETING: the same answer.
    assert Deployments.delete(name, **old).output.status == "DELETING"
    assert Deployments.get(name, **old).output.status == "DELETING"
    finish(name)
    assert_old_error(Deployments.get(name, **old), 404, "NotFound")
    assert_old_error(Deployments.delete(name, **old), 404, "NotFound")


# --- every operation, new client -----------------------------------------------------------


def test_new_client_create_get_scale_delete(new):
    dep = new.create(model=TURBO, capacity=2, suffix="new")
    assert (dep.deployed_model, dep.model, dep.status) == ("qwen-turbo-new", TURBO, "PENDING")
    assert (dep.capacity, dep.base_capacity, dep.ready_capacity) == (2, 2, 0)
    assert dep.workspace_id == WORKSPACE
    assert dep.created_at and dep.updated_at
    assert_request_id(dep.request_id)
    assert dep.headers["x-request-id"] == dep.request_id
    name = dep.deployed_model

    assert new.get(name).status in {"PENDING", "DEPLOYING"}
    finish(name)
    dep = new.get(name)
    assert (dep.status, dep.ready_capacity) == ("RUNNING", 2)

    dep = new.scale(name, capacity=6)
    assert (dep.status, dep.capacity, dep.ready_capacity) == ("UPDATING", 6, 2)
    finish(name)
    dep = new.get(name)
    assert (dep.status, dep.capacity, dep.ready_capacity) == ("RUNNING", 6, 6)

    # Status only: the new client types the answer as JobStatus.
    status = new.delete(name)
    assert type(status).__name__ == "JobStatus"
    assert status.status == "DELETING"
    assert not status.is_error
    assert_request_id(status.request_id)
    assert new.delete(name).status == "DELETING"
    finish(name)
    with pytest.raises(NotFoundError) as info:
        new.get(name)
    assert_new_error(info, NotFoundError, 404, "NotFound")


def test_a_deployment_moves_through_its_states_by_itself(new):
    """PENDING, then DEPLOYING (sdk.rs configures it), then RUNNING, on the simulator's timers."""
    name = new.create(model=EMO, capacity=1).deployed_model
    seen = poll(lambda: new.get(name).status, lambda s: s == "RUNNING", f"{name} RUNNING")
    order = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
    assert order[-1] == "RUNNING"
    assert set(order) <= {"PENDING", "DEPLOYING", "RUNNING"}, order
    assert order == sorted(order, key=["PENDING", "DEPLOYING", "RUNNING"].index), order


def test_deploying_shows_in_both_clients(old, new):
    name = new.create(model=PLUS, capacity=8).deployed_model
    set_state(name, status="DEPLOYING")
    dep = new.get(name)
    assert (dep.status, dep.ready_capacity) == ("DEPLOYING", 0)
    rsp = Deployments.get(name, **old)
    assert (rsp.output.status, rsp.output.ready_capacity) == ("DEPLOYING", 0)
    set_state(name, status="RUNNING", finish_now=True)
    assert new.get(name).ready_capacity == 8


# --- list and paging -----------------------------------------------------------------------


def test_list_pages_through_twelve_deployments_with_both_clients(old, new):
    names = []
    for i in range(12):
        # Half through each client, so both create alike.
        if i % 2:
            names.append(new.create(model=EMO, capacity=1, suffix=f"p{i:02d}").deployed_model)
        else:
            rsp = Deployments.call(model=EMO, capacity=1, suffix=f"p{i:02d}", **old)
            assert rsp.status_code == 200, vars(rsp)
            names.append(rsp.output.deployed_model)
    newest_first = list(reversed(names))

    seen = []
    for page_no, size in [(1, 5), (2, 5), (3, 2)]:
        rsp = Deployments.list(page_no=page_no, page_size=5, **old)
        assert rsp.status_code == 200, vars(rsp)
        out = rsp.output
        assert (out.total, out.page_no, out.page_size) == (12, page_no, 5)
        assert len(out.deployments) == size
        seen += [d.deployed_model for d in out.deployments]
    assert seen == newest_first
    assert Deployments.list(page_no=4, page_size=5, **old).output.deployments == []

    seen = []
    for page_no, size in [(1, 5), (2, 5), (3, 2)]:
        page = new.list(page_no=page_no, page_size=5)
        assert (page.total_count, page.page_no, page.page_size) == (12, page_no, 5)
        assert len(page.deployments) == size
        assert all(d.workspace_id == WORKSPACE for d in page.deployments)
        seen += [d.deployed_model for d in page.deployments]
    assert seen == newest_first
    assert new.list(page_no=4, page_size=5).deployments == []

    # Another workspace sees none of them.
    rsp = Deployments.list(api_key=OTHER_KEY, base_address=old["base_address"])
    assert (rsp.status_code, rsp.output.total) == (200, 0)


# --- what the clients send: plan, deploy_spec, billing_method --------------------------------


def test_the_sdk_spelling_lora_is_accepted_and_answered_lowercase(old, new):
    # The old client's docstring spells it "Lora".
    rsp = Deployments.call(model=EMO, capacity=1, suffix="ol", plan="Lora", **old)
    assert rsp.status_code == 200, vars(rsp)
    assert rsp.output.plan == "lora"
    dep = new.create(model=EMO, capacity=1, suffix="nl", plan="Lora")
    assert dep.plan == "lora"
    assert record("emo-nl")["plan"] == "lora"


def test_deploy_spec_is_a_string_not_the_new_clients_dict(new):
    with pytest.raises(BadRequestError) as info:
        new.create(
            model=PLUS,
            capacity=8,
            plan="mu",
            deploy_spec={"spec": "MU1"},
            billing_method="post_paid",
        )
    e = assert_new_error(info, BadRequestError, 400, "InvalidParameter")
    assert 'deploy_spec: must be a string naming the model unit spec, such as "MU1"' in e.message
    assert control("GET", "deployments") == []

    # The client types deploy_spec as a dict, but a str goes through unchanged.
    dep = new.create(
        model=PLUS, capacity=8, plan="mu", deploy_spec="MU1", billing_method="post_paid"
    )
    assert (dep.status, dep.plan, dep.model_unit_spec) == ("PENDING", "mu", "MU1")
    assert record(PLUS)["deploy_spec"] == "MU1"

    with pytest.raises(BadRequestError) as info:
        new.create(model=PLUS, capacity=8, suffix="b", billing_method=3)
    e = assert_new_error(info, BadRequestError, 400, "InvalidParameter")
    assert "billing_method" in e.message


# --- every error code of the deployment routes, old client ----------------------------------


def test_old_client_errors_are_returned(old):
    # InvalidParameter: capacity not a multiple of the base (qwen-turbo's is 2).
    assert_old_error(Deployments.call(model=TURBO, capacity=3, **old), 400, "InvalidParameter")
    # NotFound: an unknown model, an unknown deployment.
    assert_old_error(Deployments.call(model="no-such-model", capacity=1, **old), 404, "NotFound")
    assert_old_error(Deployments.get("no-such-deployment", **old), 404, "NotFound")
    assert_old_error(Deployments.scale("no-such-deployment", 2, **old), 404, "NotFound")
    # Conflict: the same name again.
    assert Deployments.call(model=TURBO, capacity=2, **old).status_code == 200
    assert_old_error(Deployments.call(model=TURBO, capacity=2, **old), 409, "Conflict")
    # OperationDenied: scaling what is not RUNNING (held there, whatever the timers).
    set_state(TURBO, status="DEPLOYING")
    assert_old_error(Deployments.scale(TURBO, 4, **old), 400, "OperationDenied")
    set_state(TURBO, status="STOPPED")
    assert_old_error(Deployments.scale(TURBO, 4, **old), 400, "OperationDenied")
    # UnsupportedOperation: a lora deployment cannot be scaled.
    assert Deployments.call(model=EMO, capacity=1, plan="Lora", **old).status_code == 200
    finish(EMO)
    assert_old_error(Deployments.scale(EMO, 2, **old), 400, "UnsupportedOperation")
    # InvalidApiKey: a key the simulator does not know.
    unknown = Deployments.list(api_key="sk-unknown", base_address=old["base_address"])
    assert_old_error(unknown, 401, "InvalidApiKey")
    # Workspace.AccessDenied: another key's workspace.
    elsewhere = Deployments.list(workspace=OTHER_WORKSPACE, **old)
    assert_old_error(elsewhere, 403, "Workspace.AccessDenied")
    assert Deployments.list(workspace=WORKSPACE, **old).status_code == 200


def test_old_client_throttled_then_restored(old):
    control("PUT", "faults", {"throttle_rate": 1.0})
    rsp = Deployments.list(**old)
    assert_old_error(rsp, 429, "Throttling.RateQuota")
    assert_old_error(Deployments.call(model=EMO, capacity=1, **old), 429, "Throttling.RateQuota")
    control("PUT", "faults", {})
    assert Deployments.list(**old).status_code == 200


# --- every error code of the deployment routes, new client ----------------------------------


def test_new_client_errors_are_raised(new, new_client_factory):
    with pytest.raises(BadRequestError) as info:
        new.create(model=TURBO, capacity=3)
    assert_new_error(info, BadRequestError, 400, "InvalidParameter")
    with pytest.raises(NotFoundError) as info:
        new.create(model="no-such-model", capacity=1)
    assert_new_error(info, NotFoundError, 404, "NotFound")
    with pytest.raises(NotFoundError) as info:
        new.scale("no-such-deployment", capacity=2)
    assert_new_error(info, NotFoundError, 404, "NotFound")

    new.create(model=TURBO, capacity=2)
    seq = next_seq()
    # 409 has no class of its own in the SDK: a bare APIStatusError, not retried here.
    with pytest.raises(APIStatusError) as info:
        new.create(model=TURBO, capacity=2)
    assert_new_error(info, APIStatusError, 409, "Conflict")
    assert [r["status"] for r in requests_since(seq)] == [409], "one call, no retry"

    set_state(TURBO, status="DEPLOYING")
    with pytest.raises(BadRequestError) as info:
        new.scale(TURBO, capacity=4)
    e = assert_new_error(info, BadRequestError, 400, "OperationDenied")
    assert "RUNNING" in e.message

    new.create(model=EMO, capacity=1, plan="Lora")
    finish(EMO)
    with pytest.raises(BadRequestError) as info:
        new.scale(EMO, capacity=2)
    assert_new_error(info, BadRequestError, 400, "UnsupportedOperation")

    with pytest.raises(AuthenticationError) as info:
        new_client_factory(api_key="sk-unknown").list()
    assert_new_error(info, AuthenticationError, 401, "InvalidApiKey")

    with pytest.raises(PermissionDeniedError) as info:
        new_client_factory(workspace=OTHER_WORKSPACE).list()
    e = assert_new_error(info, PermissionDeniedError, 403, "Workspace.AccessDenied")
    assert OTHER_WORKSPACE in e.message
    # A per-call workspace overrides the client's.
    with pytest.raises(PermissionDeniedError):
        new.list(workspace=OTHER_WORKSPACE)
    assert new_client_factory(api_key=OTHER_KEY, workspace=OTHER_WORKSPACE).list().total_count == 0


def test_new_client_throttled_then_restored(new):
    control("PUT", "faults", {"throttle_rate": 1.0})
    seq = next_seq()
    with pytest.raises(RateLimitError) as info:
        new.list()
    assert_new_error(info, RateLimitError, 429, "Throttling.RateQuota")
    assert info.value.headers.get("retry-after") == "1"
    assert len(requests_since(seq)) == 1, "max_retries=0: one call"
    control("PUT", "faults", {})
    assert new.list().total_count == 0


# --- the workspace header --------------------------------------------------------------------


def test_the_simulator_records_the_workspace_header_each_client_sent(old, new, new_client_factory):
    seq = next_seq()
    new.list()
    new_client_factory().list()  # no workspace configured
    Deployments.list(workspace=WORKSPACE, **old)
    Deployments.list(**old)
    records = requests_since(seq)
    assert [r["endpoint"] for r in records] == ["deployment_list"] * 4
    assert [r["workspace_header"] for r in records] == [WORKSPACE, None, WORKSPACE, None]
    assert all(r["workspace_id"] == WORKSPACE and r["status"] == 200 for r in records)
    assert all(KEY not in str(r) for r in records), "a key leaked into the records"
