"""The API's contract, checked from the outside.

1. The OpenAPI document the server serves validates (openapi-spec-validator), its operation ids
   are unique, and every operation that answers with a body describes that body.
2. A client generated from it by openapi-python-client drives real calls against the running
   server. Each response is parsed into the generated models, which checks the schemas against
   what the server actually sends.

Usage: check_openapi.py BASE_URL EMAIL PASSWORD INTEGRATION_ID
"""

import importlib
import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from openapi_spec_validator import OpenAPIV31SpecValidator


def fail(message):
    print(f"contract check failed: {message}", file=sys.stderr)
    sys.exit(1)


def check_document(doc):
    errors = list(OpenAPIV31SpecValidator(doc).iter_errors())
    for e in errors[:20]:
        print(f"  {e.message}", file=sys.stderr)
    if errors:
        fail(f"{len(errors)} validation errors in the OpenAPI document")
    ids = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            ids.append(op.get("operationId"))
            successes = {s: r for s, r in op["responses"].items() if s.startswith("2")}
            if not successes:
                fail(f"{method} {path} has no 2xx response")
            for status, response in successes.items():
                if status != "204" and "content" not in response:
                    fail(f"{method} {path} answers {status} without a schema for its body")
            if "requestBody" in op:
                content = op["requestBody"].get("content", {})
                if not any("schema" in c for c in content.values()):
                    fail(f"{method} {path} takes a body without a schema")
    duplicates = {i for i in ids if ids.count(i) > 1}
    if None in ids or duplicates:
        fail(f"operation ids must be unique and present: {sorted(map(str, duplicates))}")
    return len(ids)


def generate(doc_path, out):
    subprocess.run(
        ["openapi-python-client", "generate", "--path", str(doc_path), "--meta", "none",
         "--output-path", str(out / "lgclient")],
        check=True, capture_output=True, text=True,
    )
    sys.path.insert(0, str(out))
    return importlib.import_module("lgclient")


def parsed(response, model_name, what):
    """The call's parsed body, or a failure naming the call."""
    if response.status_code // 100 != 2:
        fail(f"{what}: HTTP {response.status_code}: {response.content[:300]!r}")
    if response.parsed is None or type(response.parsed).__name__ != model_name:
        fail(f"{what}: expected a {model_name}, got {type(response.parsed).__name__}")
    return response.parsed


def drive(lg, base, email, password, integration_id):
    from lgclient.api.auth import get_me, login
    from lgclient.api.integrations import get_integration, list_integrations
    from lgclient.api.metrics import get_metrics, get_monitoring_overview
    from lgclient.api.policies import list_policies, test_policy
    from lgclient.api.traces import get_trace, list_traces
    from lgclient.models import LoginRequest, TestPolicyRequest

    anonymous = lg.Client(base_url=base)
    signed_in = parsed(
        login.sync_detailed(client=anonymous, body=LoginRequest(email=email, password=password)),
        "LoginView", "login")
    client = lg.AuthenticatedClient(base_url=base, token=signed_in.token)
    me = parsed(get_me.sync_detailed(client=client), "UserView", "get_me")
    if me.email != email or me.role != "admin":
        fail(f"get_me: {me.email} {me.role}")
    integrations = parsed(list_integrations.sync_detailed(client=client), "IntegrationList",
                          "list_integrations")
    if not any(i.id == integration_id for i in integrations.items):
        fail("list_integrations: the integration is missing")
    one = parsed(get_integration.sync_detailed(client=client, id=integration_id),
                 "IntegrationView", "get_integration")
    if one.interactions_synced <= 0:
        fail("get_integration: nothing synced")
    page = parsed(list_traces.sync_detailed(client=client, limit=5), "TracePage", "list_traces")
    if not page.items or not page.next_cursor:
        fail("list_traces: expected a first page with more after it")
    detail = parsed(get_trace.sync_detailed(client=client, id=page.items[0].id),
                    "TraceDetailView", "get_trace")
    if detail.id != page.items[0].id:
        fail("get_trace: another trace came back")
    figures = parsed(get_metrics.sync_detailed(client=client), "MetricsView", "get_metrics")
    if figures.requests <= 0:
        fail("get_metrics: no requests in the last 24 hours")
    parsed(get_monitoring_overview.sync_detailed(client=client), "OverviewView",
           "get_monitoring_overview")
    policies = parsed(list_policies.sync_detailed(client=client), "PolicyList", "list_policies")
    if not policies.items:
        fail("list_policies: the built-ins are missing")
    rego = ("package langguard.slow\n"
            "violation contains {\"type\": \"slow\", \"message\": \"slow\"} if {\n"
            "  input.trace.observations[0].metadata.latency_ms > 10\n}\n")
    sample = {"trace": {"observations": [{"metadata": {"latency_ms": 50}}]}}
    body = TestPolicyRequest.from_dict({"rego": rego, "input": sample})
    found = parsed(test_policy.sync_detailed(client=client, body=body), "PolicyTestView",
                   "test_policy")
    if len(found.violations) != 1:
        fail(f"test_policy: expected one violation, got {len(found.violations)}")
    return 10


def main():
    base, email, password, integration_id = sys.argv[1:5]
    with urllib.request.urlopen(f"{base}/api/v1/openapi.json") as r:
        doc = json.load(r)
    operations = check_document(doc)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        doc_path = tmp / "openapi.json"
        doc_path.write_text(json.dumps(doc))
        lg = generate(doc_path, tmp)
        calls = drive(lg, base, email, password, int(integration_id))
    print(f"contract ok: {operations} operations validated, {calls} calls through the generated client")


if __name__ == "__main__":
    main()
