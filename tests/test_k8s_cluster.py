"""Chapter 2b on a cluster: MicroK8s commands, rollout parsing, pod explanations, and the API steps.

No Kubernetes API server can run here. The API steps are exercised through the *real*
``kubernetes`` client (``ApiClient``, the generated API classes, ``watch.Watch``, its REST layer
and urllib3's ``HTTPResponse``); only the socket is replaced: :class:`Wire` takes the place of
``ApiClient.rest_client.pool_manager``, records each request (method, URL, headers, body) and
answers with canned responses shaped like a real API server's (a Deployment as server-side apply
returns it, watch events as newline-delimited JSON, a ``Status`` object for errors). These tests
show which HTTP requests labkit makes and how it reads the answers; they do not show that a live
API server accepts them (README: "Kubernetes: what was tried on a real cluster and what is untested").
"""

from __future__ import annotations

import copy
import io
import json
import shutil
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3
from planmatch import assert_plan_matches, execute_and_match

from labkit.i18n import use_lang
from labkit.logic import k8s_cluster as kc
from labkit.logic.k8s_manifests import AppFields, build_deployment, dump_yaml
from labkit.steps.k8s_api import ClusterFailed
from labkit.steps.k8s_cluster import (
    ApplyManifest,
    DeleteApp,
    MicroK8sEnable,
    MicroK8sStatus,
    Scale,
    WaitRollout,
    cluster_unavailable,
)

kubernetes = pytest.importorskip("kubernetes")

HOST = "https://k8s.test:16443"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


class Wire:
    """Stands in for urllib3's PoolManager under the client: records requests, returns canned ones."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []

    def request(self, method, url, body=None, headers=None, **kw):
        parts = urlsplit(url)
        self.requests.append(
            {
                "method": method,
                "path": parts.path,
                "query": parse_qs(parts.query),
                "headers": dict(headers or {}),
                "body": json.loads(body) if body else None,
            }
        )
        status, payload = self.answers.pop(0)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return urllib3.HTTPResponse(
            body=io.BytesIO(data),
            status=status,
            headers={"Content-Type": "application/json"},
            preload_content=False,
        )

    def clear(self):
        pass


def client_with(answers):
    from kubernetes import client

    api = client.ApiClient(client.Configuration(host=HOST))
    wire = Wire(answers)
    api.rest_client.pool_manager = wire
    return api, wire


def served(status=None, *, generation=1, replicas=2):
    """The seed's nginx Deployment as the API server returns it (metadata and status filled in)."""
    obj = copy.deepcopy(build_deployment(AppFields(replicas=replicas)))
    obj["metadata"].update(
        namespace="default",
        uid="6f1c0a4e-3b7d-4c55-9a55-2f0e3c1d9b10",
        resourceVersion=str(1000 + generation),
        generation=generation,
        creationTimestamp="2026-12-02T15:00:00Z",
        managedFields=[{"manager": "labkit", "operation": "Apply", "apiVersion": "apps/v1"}],
    )
    obj["status"] = status if status is not None else {}
    return obj


def event(kind, obj):
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def status_error(code, reason, message):
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


READY = {
    "observedGeneration": 1,
    "replicas": 2,
    "updatedReplicas": 2,
    "readyReplicas": 2,
    "availableReplicas": 2,
}


# ----------------------------------------------------------------------------------------------
# pure logic
# ----------------------------------------------------------------------------------------------
def test_microk8s_command_lines_are_the_seeds():
    assert kc.status_argv() == ["microk8s", "status", "--wait-ready"]
    assert kc.inspect_argv() == ["microk8s", "inspect"]
    assert kc.enable_argv() == ["microk8s", "enable", "dns", "registry", "dashboard"]
    assert kc.get_all_argv() == ["microk8s", "kubectl", "get", "all", "-A"]
    assert kc.dashboard_token_argv() == [
        "microk8s",
        "kubectl",
        "-n",
        "kube-system",
        "create",
        "token",
        "default",
    ]
    with use_lang("en"):
        assert "1.24" in kc.dashboard_token_note() and "create token" in kc.dashboard_token_note()


def test_parse_microk8s_status():
    text = (
        "microk8s is running\nhigh-availability: no\n  datastore master nodes: 127.0.0.1:19001\n"
        "addons:\n  enabled:\n    dns                  # (core) CoreDNS\n"
        "    ha-cluster           # (core) Configure high availability\n"
        "  disabled:\n    dashboard            # (core) The Kubernetes dashboard\n"
        "    registry             # (core) Private image registry exposed on localhost:32000\n"
    )
    st = kc.parse_status(text)
    assert st.running and st.enabled == ("dns", "ha-cluster") and st.disabled == ("dashboard", "registry")
    assert not kc.parse_status(
        "microk8s is not running. Use microk8s inspect for a deeper inspection."
    ).running


@pytest.mark.parametrize(
    ("status", "generation", "done", "progress"),
    [
        ({}, 1, False, 0.0),
        (
            {"observedGeneration": 1, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1},
            1,
            False,
            0.5,
        ),
        (READY, 1, True, 1.0),
        (READY, 2, False, 1.0),  # new spec not yet observed: not done even with 2/2 ready
    ],
)
def test_parse_rollout(status, generation, done, progress):
    r = kc.parse_rollout(served(status, generation=generation))
    assert (r.done, r.progress, r.desired) == (done, progress, 2)
    assert r.uid.startswith("6f1c")
    with use_lang("en"):
        assert ("rolled out" in r.message()) == done
        if generation == 2:
            assert "generation 2, observed 1" in r.message()


def test_stalled_rollout_is_named():
    cond = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    r = kc.parse_rollout(served({"observedGeneration": 1, "conditions": [cond]}))
    assert r.stalled and not r.done
    with use_lang("zh"):
        assert "ProgressDeadlineExceeded" in r.message() and "超时" in r.message()


def pod(name, waiting=None, phase="Pending", conditions=()):
    statuses = [{"name": "nginx", "state": {"waiting": waiting}}] if waiting else []
    return {
        "metadata": {"name": name},
        "status": {"phase": phase, "containerStatuses": statuses, "conditions": list(conditions)},
    }


@pytest.mark.parametrize(
    ("reason", "en", "zh"),
    [
        ("ImagePullBackOff", "localhost:32000/name:tag", "拉取镜像失败"),
        ("ErrImagePull", "check the image name", "镜像名"),
        ("CrashLoopBackOff", "kubectl logs POD --previous", "不断退出"),
        ("CreateContainerConfigError", "ConfigMap or Secret", "ConfigMap 或 Secret"),
    ],
)
def test_waiting_reasons_are_explained_in_both_languages(reason, en, zh):
    p = pod("nginx-deployment-abc", {"reason": reason, "message": "detail"})
    with use_lang("en"):
        [line] = kc.explain_pod(p)
        assert reason in line and en in line and "nginx-deployment-abc" in line
    with use_lang("zh"):
        assert zh in kc.explain_pod(p)[0]


def test_unschedulable_pod_and_event():
    cond = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes: Insufficient cpu",
    }
    with use_lang("en"):
        [line] = kc.explain_pod(pod("p1", conditions=[cond]))
        assert "Pending" in line and "resources.requests" in line and "Insufficient cpu" in line
        ev = {
            "type": "Warning",
            "reason": "FailedScheduling",
            "message": "0/1 nodes",
            "involvedObject": {"kind": "Pod", "name": "p1"},
        }
        assert kc.explain_event(ev).startswith("Warning FailedScheduling Pod/p1: 0/1 nodes —")
        assert kc.explain_reason("Pulled") is None


# ----------------------------------------------------------------------------------------------
# the API steps through the real client's request path
# ----------------------------------------------------------------------------------------------
def test_apply_is_a_server_side_apply_patch():
    api, wire = client_with([(200, served())])
    step = ApplyManifest(api_client=api)
    result, ran = execute_and_match(step)
    assert result.status == "pass", result.message
    [req] = wire.requests
    assert req["method"] == "PATCH"
    assert req["path"] == f"{DEPLOYMENTS}/nginx-deployment"
    assert req["query"] == {"fieldManager": ["labkit"], "force": ["true"]}
    assert req["headers"]["Content-Type"] == "application/apply-patch+yaml"
    assert req["body"] == build_deployment(AppFields())
    [obj] = result.evidence["objects"]
    assert obj["uid"] == "6f1c0a4e-3b7d-4c55-9a55-2f0e3c1d9b10" and obj["generation"] == 1
    assert ran == [step.argv()]


def test_apply_from_file_sends_the_file_as_the_manifest_panel_wrote_it(tmp_path):
    """``from_file=True`` (the chapter's apply panel): the file is read when the step runs, and its
    document, not the default fields, is the body; a missing file is an error naming the field."""
    fields = AppFields(replicas=3, image="nginx:1.25.3")
    path = tmp_path / "nginx-deployment.yaml"
    path.write_text(dump_yaml([build_deployment(fields)]), encoding="utf-8")
    api, wire = client_with([(200, served())])
    step = ApplyManifest(path=str(path), from_file=True, api_client=api)
    assert str(path) in step.plan().commands[0] and not step.plan().files
    result, ran = execute_and_match(step)
    assert result.status == "pass", result.message
    [req] = wire.requests
    assert req["body"] == build_deployment(fields) != build_deployment(AppFields())
    assert ran == [step.argv()]
    api, wire = client_with([])
    gone = ApplyManifest(path=str(tmp_path / "gone.yaml"), from_file=True, api_client=api)
    with use_lang("en"):
        missing = gone.execute("auto")
    assert missing.status == "error" and missing.message.startswith("path: ")
    assert "manifest panel" in missing.message and not wire.requests


def test_apply_refused_by_the_server_names_the_kubectl_line_and_the_message():
    msg = 'Deployment.apps "nginx-deployment" is invalid: spec.template.metadata.labels: Invalid value'
    api, wire = client_with([(422, status_error(422, "Invalid", msg))])
    step = ApplyManifest(api_client=api)
    with use_lang("en"):
        result, _ = execute_and_match(step)
    assert result.status == "error"
    assert result.evidence["returncode"] == 422 and "spec.template.metadata.labels" in result.message
    assert "kubectl apply --server-side" in result.message and "validate step" in result.message
    assert [r["method"] for r in wire.requests] == ["PATCH"]


def test_unreachable_api_server_is_translated():
    from kubernetes import client

    from labkit.steps.k8s_api import Cluster

    api = client.ApiClient(client.Configuration(host="https://127.0.0.1:1"))
    api.configuration.retries = False
    api.rest_client.pool_manager.connection_pool_kw["retries"] = False
    with use_lang("en"), pytest.raises(ClusterFailed) as info:
        Cluster(api).read("Deployment", "x", "default", argv=["kubectl", "get", "deployment/x"])
    assert info.value.status is None and "could not reach the API server" in str(info.value)


def test_rollout_follows_the_watch_to_ready():
    rolling = {"observedGeneration": 1, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1}
    stream = event("ADDED", served(rolling)) + event("MODIFIED", served(READY))
    api, wire = client_with([(200, served({})), (200, stream)])
    seen, lines = [], []
    step = WaitRollout(api_client=api, timeout_s=30)
    with use_lang("en"):
        result, ran = execute_and_match(step, on_progress=seen.append, on_line=lambda _k, t: lines.append(t))
    assert result.status == "pass", result.message
    assert seen == [0.0, 0.5, 1.0]
    assert any("1/2 ready" in t for t in lines) and "2/2 replicas ready" in result.message
    read, watch = wire.requests
    assert (read["method"], read["path"]) == ("GET", f"{DEPLOYMENTS}/nginx-deployment")
    assert watch["path"] == DEPLOYMENTS
    assert watch["query"]["watch"] == ["true"] and watch["query"]["fieldSelector"] == [
        "metadata.name=nginx-deployment"
    ]
    assert 1 <= int(watch["query"]["timeoutSeconds"][0]) <= 30
    assert result.evidence["uid"].startswith("6f1c") and result.evidence["ready"] == 2
    assert ran == [step.argv()]


def test_failed_rollout_lists_pods_and_events_explained():
    pending = {"observedGeneration": 1, "updatedReplicas": 2, "unavailableReplicas": 2}
    stalled = dict(
        pending, conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    )
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "nginx:1.14.22"'}
    pods = {"kind": "PodList", "items": [pod("nginx-deployment-7d9c-abcde", waiting)]}
    events = {
        "kind": "EventList",
        "items": [
            {
                "type": "Warning",
                "reason": "Failed",
                "message": "Failed to pull image",
                "involvedObject": {"kind": "Pod", "name": "nginx-deployment-7d9c-abcde"},
            },
            {
                "type": "Warning",
                "reason": "BackOff",
                "message": "other app",
                "involvedObject": {"kind": "Pod", "name": "redis-1"},
            },
        ],
    }
    api, wire = client_with(
        [(200, served(pending)), (200, event("MODIFIED", served(stalled))), (200, pods), (200, events)]
    )
    step = WaitRollout(api_client=api, timeout_s=30)
    with use_lang("en"):
        result, ran = execute_and_match(step)
    assert result.status == "fail"
    assert "ProgressDeadlineExceeded" in result.message and "localhost:32000/name:tag" in result.message
    assert "Failed to pull image" in result.message and "redis-1" not in result.message
    assert wire.requests[2]["query"]["labelSelector"] == ["app=nginx"]
    assert ran == [step.argv(), *step.probes()]


def test_scale_patches_the_scale_subresource_and_is_idempotent():
    api, wire = client_with([(200, served(READY)), (200, {"kind": "Scale", "spec": {"replicas": 3}})])
    step = Scale(replicas=3, api_client=api)
    result, _ = execute_and_match(step)
    assert result.status == "pass"
    req = wire.requests[1]
    assert (req["method"], req["path"]) == ("PATCH", f"{DEPLOYMENTS}/nginx-deployment/scale")
    assert req["headers"]["Content-Type"] == "application/merge-patch+json" and req["body"] == {
        "spec": {"replicas": 3}
    }
    api, wire = client_with([(200, served(READY, replicas=3))])
    again, _ = execute_and_match(Scale(replicas=3, api_client=api))
    assert again.status == "pass" and again.evidence["already_present"] and len(wire.requests) == 1


def test_delete_needs_confirmation_then_deletes():
    api, wire = client_with([(200, served(READY))])
    refused, ran = execute_and_match(DeleteApp(api_client=api), mode="auto")
    assert refused.status == "skipped" and refused.evidence["skip_reason"] == "consent"
    assert refused.evidence["keyword"] == "confirm" and [r["method"] for r in wire.requests] == ["GET"]
    assert ran == DeleteApp().read_argvs()  # it read the state, deleted nothing
    gone = {"kind": "Status", "status": "Success"}
    api, wire = client_with([(200, served(READY)), (200, gone)])
    result, _ = execute_and_match(DeleteApp(confirm=True, api_client=api))
    assert result.status == "pass"
    assert (wire.requests[1]["method"], wire.requests[1]["path"]) == (
        "DELETE",
        f"{DEPLOYMENTS}/nginx-deployment",
    )
    assert wire.requests[1]["query"] == {"propagationPolicy": ["Foreground"]}
    api, wire = client_with([(404, status_error(404, "NotFound", "not found"))])
    absent, _ = execute_and_match(DeleteApp(api_client=api))
    assert absent.status == "pass" and absent.evidence["already_present"]


# ----------------------------------------------------------------------------------------------
# this machine: no cluster, no microk8s → planned with the reason
# ----------------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("microk8s") is not None, reason="MicroK8s is installed here")
@pytest.mark.parametrize("step", [MicroK8sStatus(inspect=True), MicroK8sEnable()], ids=["status", "enable"])
def test_microk8s_steps_are_planned_with_the_reason_here(step):
    with use_lang("en"):
        result = step.execute("auto")
    assert result.status == "skipped" and result.evidence["skip_reason"] == "host"
    assert "snap install microk8s" in result.message
    assert_plan_matches(step.plan(), result)
    assert ["microk8s", "enable", "dns", "registry", "dashboard"] in step.plan().planned_argv() or isinstance(
        step, MicroK8sStatus
    )


def test_api_steps_without_a_kubeconfig_are_planned_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    if shutil.which("microk8s"):
        pytest.skip("MicroK8s is installed here")
    with use_lang("en"):
        assert "no Kubernetes cluster on this machine" in cluster_unavailable()
        for step in (ApplyManifest(), WaitRollout(), Scale(), DeleteApp()):
            result = step.execute("auto")
            assert result.status == "skipped" and result.evidence["skip_reason"] == "host", step
            assert_plan_matches(step.plan(), result)


def test_the_kubernetes_client_has_one_boundary():
    """Only steps/k8s_api.py imports ``kubernetes`` (and so sees ApiException); the rest gets dicts."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "labkit"
    users = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            if any(n == "kubernetes" or n.startswith("kubernetes.") for n in names):
                users.add(str(path.relative_to(root)))
    assert users == {"steps/k8s_api.py"}


def test_rollout_parsing_takes_any_status_shape():
    """Whatever the status holds (missing fields, wrong types), parsing gives a progress in [0, 1]."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    counts = st.one_of(st.none(), st.integers(-3, 10), st.text(max_size=3), st.booleans())
    keys = ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "observedGeneration"]

    @settings(max_examples=200, deadline=None)
    @given(st.fixed_dictionaries({k: counts for k in keys}), st.integers(0, 5), counts)
    def check(status, replicas, generation):
        obj = served({k: v for k, v in status.items() if v is not None}, replicas=replicas)
        obj["metadata"]["generation"] = generation
        r = kc.parse_rollout(obj)
        assert 0.0 <= r.progress <= 1.0
        assert not r.done or (r.ready == r.desired and r.seen)
        assert r.message()

    check()
