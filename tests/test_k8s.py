"""Kubernetes manifests (course 2.3, 2.4.8): builders, offline validation against the real schemas
shipped by kubernetes-validate, the semantic rules, ``labkit k8s validate`` and the
``ch2.k8s.manifest`` step.

The valid manifests in ``tests/data/k8s/`` are the seed's nginx Deployment and examples from the
official Kubernetes documentation (Deployment, Service, ConfigMap, CronJob batch/v1, Job, Pod
with resources).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planmatch import execute_and_match

from labkit import cli
from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.k8s_schemas import load_schemas, resolve_version, supported_versions
from labkit.logic import k8s_yaml
from labkit.logic.k8s_manifests import (
    AppFields,
    build_configmap,
    build_deployment,
    build_service,
    check_fields,
    dump_yaml,
    require_valid,
)
from labkit.logic.k8s_rules import validate_text
from labkit.steps.k8s import ValidateManifest

DATA = Path(__file__).resolve().parent / "data" / "k8s"
EXAMPLES = sorted(DATA.glob("*.yaml"))
SEED = (DATA / "seed-nginx-deployment.yaml").read_text(encoding="utf-8")
CJK = re.compile(r"[\u4e00-\u9fff]")


def problems(text: str, version: str | None = None) -> list[tuple[int, str, str, str]]:
    """(doc, path, severity, code) of every problem."""
    report = validate_text(text, load_schemas(version))
    return [(p.doc, p.path, p.finding.severity, p.finding.code) for p in report.problems]


def errors_at(text: str) -> dict[str, str]:
    """field path → code of the errors (document 1)."""
    return {path: code for _, path, sev, code in problems(text) if sev == "error"}


# -- builders ---------------------------------------------------------------------------------------
def test_default_fields_reproduce_the_seeds_nginx_deployment_text():
    assert dump_yaml(build_deployment()) == SEED
    assert list(build_deployment()) == ["apiVersion", "kind", "metadata", "spec"]


def test_builders_from_fields_and_multi_document_yaml_validate():
    fields = AppFields(
        name="web",
        image="registry.local:5000/web:2.0",
        replicas=3,
        ports=(8080, 9090),
        labels={"app": "web", "tier": "frontend"},
        container="web",
        resources={"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
        env={"MODE": "prod", "MOTD": "line one\nline two"},
    )
    assert check_fields(fields) == []
    text = dump_yaml(
        [build_deployment(fields), build_service(fields), build_configmap("web-config", {"a": 1})]
    )
    assert text.count("---\n") == 2
    assert "MOTD\n          value: |-\n            line one" in text  # multi-line strings as blocks
    report = validate_text(text, load_schemas())
    assert report.ok, [p.line_for("x") for p in report.problems]
    assert [d.kind for d in report.documents] == ["Deployment", "Service", "ConfigMap"]
    service = build_service(fields)
    assert service["spec"]["selector"] == {"app": "web", "tier": "frontend"}
    assert [p["name"] for p in service["spec"]["ports"]] == ["port-8080", "port-9090"]


def test_field_rules_name_the_field_in_both_languages():
    bad = AppFields(name="My_Nginx", image="nginx", replicas=-1, ports=(80, 80, 70000), container="Nginx")
    found = check_fields(bad)
    by_code = {f.code: f for f in found}
    assert {
        "k8s.name",
        "k8s.container",
        "k8s.image_tag",
        "k8s.replicas",
        "k8s.port_duplicate",
        "k8s.port",
    } <= set(by_code)
    assert by_code["k8s.image_tag"].severity == "warning"
    with pytest.raises(InvalidField) as info:
        require_valid(bad)
    assert info.value.field == "name"
    with use_lang("zh"):
        assert CJK.search(str(check_fields(bad)[0]))
    with use_lang("en"):
        text = " ".join(str(f) for f in check_fields(bad))
        assert not CJK.search(text) and "DNS-1123" in text
    assert check_fields(AppFields(image="")) and check_fields(AppFields(image=""))[0].field == "image"


# -- the real schemas -------------------------------------------------------------------------------
def test_versions_are_the_installed_schemas_and_unknown_ones_are_refused():
    versions = supported_versions()
    assert "1.25" in versions and versions == tuple(
        sorted(versions, key=lambda v: tuple(map(int, v.split("."))))
    )
    assert resolve_version(None) == versions[-1]
    assert resolve_version("v1.30.2") == "1.30"
    with pytest.raises(InvalidField) as info, use_lang("en"):
        resolve_version("1.24")
    assert "1.25" in str(info.value) and versions[-1] in str(info.value)
    assert load_schemas("1.30") is load_schemas("v1.30")  # loaded once, reused


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("version", [None, "1.25"])
def test_official_examples_and_the_seed_validate(path, version):
    report = validate_text(path.read_text(encoding="utf-8"), load_schemas(version))
    assert report.ok and report.problems == [], [p.line_for(path.name) for p in report.problems]
    assert report.documents and report.documents[0].kind


def _seed_with(old: str, new: str) -> str:
    assert old in SEED
    return SEED.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "path", "code"),
    [
        ("apiVersion: apps/v1", "apiVersion: app/v1", "apiVersion", "k8s.api_wrong"),
        ("apiVersion: apps/v1", "apiVersion: v1", "apiVersion", "k8s.api_wrong"),
        ("  name: nginx-deployment", "  name: My_Nginx", "metadata.name", "k8s.name"),
        (
            "      app: nginx\n  template",
            "      app: web\n  template",
            "spec.selector.matchLabels.app",
            "k8s.selector",
        ),
        ("        image: nginx:1.14.2\n", "", "spec.template.spec.containers[0].image", "k8s.image"),
        ("  replicas: 2", "  replicas: -1", "spec.replicas", "k8s.replicas"),
        ("  replicas: 2", "  replcas: 2", "spec.replcas", "k8s.unknown_field"),
        ("  replicas: 2", "  replicas: two", "spec.replicas", "k8s.type"),
        (
            "      - name: nginx",
            "      - name: Nginx",
            "spec.template.spec.containers[0].name",
            "k8s.container_name",
        ),
        ("  selector:\n    matchLabels:\n      app: nginx\n", "", "spec.selector", "k8s.required"),
    ],
    ids=[
        "app/v1",
        "v1",
        "bad-name",
        "selector",
        "no-image",
        "negative",
        "typo",
        "type",
        "container",
        "no-selector",
    ],
)
def test_broken_variants_fail_at_the_right_field(old, new, path, code):
    found = errors_at(_seed_with(old, new))
    assert found.get(path) == code, found


def test_a_removed_api_is_an_error_naming_the_replacement():
    text = _seed_with("apiVersion: apps/v1", "apiVersion: extensions/v1beta1")
    report = validate_text(text, load_schemas())
    with use_lang("en"):
        report = validate_text(text, load_schemas())
    [problem] = report.errors
    assert (
        problem.path == "apiVersion"
        and "apps/v1" in problem.finding.fix
        and "1.16" in problem.finding.message
    )
    cron = (DATA / "cronjob.yaml").read_text(encoding="utf-8").replace("batch/v1", "batch/v1beta1")
    assert errors_at(cron) == {"apiVersion": "k8s.api_removed"}


def test_every_problem_is_reported_not_only_the_first():
    text = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: My_Nginx
spec:
  replicas: -1
  replcas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
      - name: nginx
        ports: [{containerPort: 80}, {containerPort: 80}]
      - name: nginx
        image: nginx
        resources: {requests: {cpu: "2", memory: 1Gi}, limits: {cpu: 500m, memory: lots}}
"""
    found = {(path, code) for _, path, _, code in problems(text)}
    c = "spec.template.spec.containers"
    assert found >= {
        ("metadata.name", "k8s.name"),
        ("spec.replicas", "k8s.replicas"),
        ("spec.replcas", "k8s.unknown_field"),
        ("spec.selector.matchLabels.app", "k8s.selector"),
        (f"{c}[0].image", "k8s.image"),
        (f"{c}[0].ports[1].containerPort", "k8s.port_duplicate"),
        (f"{c}[1].name", "k8s.container_duplicate"),
        (f"{c}[1].image", "k8s.image_tag"),
        (f"{c}[1].resources.requests.cpu", "k8s.request_limit"),
        (f"{c}[1].resources.limits.memory", "k8s.quantity"),
    }
    report = validate_text(text, load_schemas())
    lines = {p.path: p.finding.line for p in report.problems}
    assert lines["spec.replicas"] == 6 and lines[f"{c}[1].resources.requests.cpu"] == 18


def test_multi_document_names_the_bad_document_and_invalid_yaml_its_line():
    good = (DATA / "service.yaml").read_text(encoding="utf-8")
    bad = _seed_with("        image: nginx:1.14.2\n", "")
    found = problems(good + "---\n" + bad + "---\n" + good)
    assert [(d, p) for d, p, sev, _ in found if sev == "error"] == [
        (2, "spec.template.spec.containers[0].image")
    ]
    broken = good + "---\n" + "kind: Service\nmetadata: {name: a\nspec: []\n"
    report = validate_text(broken, load_schemas())
    [problem] = report.problems
    assert problem.doc == 2 and problem.finding.code == "k8s.yaml" and problem.finding.line is not None
    with use_lang("en"):
        report = validate_text(broken, load_schemas())
    assert f"line {report.problems[0].finding.line}" in report.problems[0].finding.message
    assert report.documents[0].kind == "Service"  # the documents before the error were checked


def test_semantic_rules_schemas_miss():
    pod = (DATA / "pod-resources.yaml").read_text(encoding="utf-8")
    assert errors_at(pod.replace('cpu: "250m"', 'cpu: "2"', 1)) == {
        "spec.containers[0].resources.requests.cpu": "k8s.request_limit"
    }
    assert errors_at(pod.replace("name: log-aggregator", "name: app")) == {
        "spec.containers[1].name": "k8s.container_duplicate"
    }
    svc = (DATA / "service.yaml").read_text(encoding="utf-8")
    assert errors_at(svc.replace("my-service", "my.service")) == {"metadata.name": "k8s.name"}
    expr = _seed_with(
        "    matchLabels:\n      app: nginx\n",
        "    matchExpressions:\n    - {key: app, operator: In, values: [web]}\n",
    )
    assert errors_at(expr) == {"spec.selector.matchExpressions[0]": "k8s.selector"}
    latest = [x for x in problems(_seed_with("nginx:1.14.2", "nginx:latest")) if x[3] == "k8s.image_tag"]
    assert latest == [(1, "spec.template.spec.containers[0].image", "warning", "k8s.image_tag")]
    assert validate_text(_seed_with("nginx:1.14.2", "nginx"), load_schemas()).ok  # a warning does not fail


def test_unknown_kinds_custom_resources_and_non_mappings():
    assert errors_at(_seed_with("kind: Deployment", "kind: deployment")) == {"kind": "k8s.kind_unknown"}
    assert errors_at(_seed_with("kind: Deployment", "kind: Deploymint")) == {"kind": "k8s.kind_unknown"}
    crd = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: web\n"
    assert [x[3] for x in problems(crd)] == ["k8s.custom_resource"]
    assert [x[3] for x in problems("- a\n- b\n")] == ["k8s.not_mapping"]
    assert [x[3] for x in problems("# nothing\n")] == ["k8s.empty"]


def test_bounded_input():
    big = "a: " + "x" * (k8s_yaml.MAX_BYTES + 1)
    assert [x[3] for x in problems(big)] == ["k8s.yaml"]
    deep = "a: " + "[" * 200 + "]" * 200
    assert [x[3] for x in problems(deep)] == ["k8s.yaml"]
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]\n"
    assert [x[3] for x in problems(bomb)] == ["k8s.yaml"]


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#\n ,.0123456789")), max_size=120))
def test_any_text_gives_a_report_never_an_exception(text):
    report = validate_text(text, load_schemas())
    assert all(p.doc >= 1 for p in report.problems)


MISTAKES = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: My_Nginx
  labels: {"-bad": "x y"}
spec:
  replicas: -1
  replcas: 3
  selector:
    matchLabels: {app: web}
    matchExpressions: [{key: app, operator: In, values: [x]}]
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
      - name: nginx
        ports: [{containerPort: 80}, {containerPort: 80}, {containerPort: 70000}]
      - name: nginx
        image: nginx
        resources: {requests: {cpu: "2", memory: 1Gi}, limits: {cpu: 500m, memory: lots}}
      - name: Bad
        image: x:1
        image: x:2
"""


def test_messages_in_both_languages():
    """Every kind of problem, read by the classifiers of tests/test_messages.py: no English prose in
    the Chinese lines, no Chinese in the English ones."""
    from test_messages import chinese_outside_quotes, latin_prose

    svc = (DATA / "service.yaml").read_text(encoding="utf-8")
    texts = [
        MISTAKES,
        _seed_with("kind: Deployment", "kind: Deploymint"),
        _seed_with("kind: Deployment", "kind: deployment"),
        _seed_with("apiVersion: apps/v1", "apiVersion: extensions/v1beta1"),
        _seed_with("apiVersion: apps/v1", "apiVersion: v1"),
        svc.replace("my-service", "9svc").replace("targetPort: 9376", "targetPort: [1]"),
        "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x}\n",
        "- a\n",
        "# nothing\n",
        *("a: b: c\n", "a:\n\tb: 1\n", "a: *x\n", "a: [1\n", "- a\nb: 1\n", "a:\n  b: 1\n c: 2\n"),
    ]
    for lang, foreign in (("zh", latin_prose), ("en", chinese_outside_quotes)):
        with use_lang(lang):
            lines = [p.line_for("f.yaml") for t in texts for p in validate_text(t, load_schemas()).problems]
        assert len(lines) > 30
        assert [(line, foreign(line)) for line in lines if foreign(line)] == []


# -- the CLI ----------------------------------------------------------------------------------------
def test_cli_exit_codes_and_one_line_per_problem(tmp_path, capsys):
    assert cli.main(["k8s", "validate", *map(str, EXAMPLES)]) == 0
    assert capsys.readouterr().out == ""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        SEED
        + "---\n"
        + _seed_with("        image: nginx:1.14.2\n", "").replace("nginx-deployment", "My_Nginx")
    )
    assert cli.main(["k8s", "validate", "--lang", "en", str(EXAMPLES[0]), str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{bad}:2:metadata.name: 'My_Nginx' is not a valid name (DNS-1123) (use lower-case letters, "
        "digits and '-', starting and ending with a letter or digit, e.g. nginx-deployment)",
        f"{bad}:2:spec.template.spec.containers[0].image: the image is missing (e.g. image: nginx:1.14.2)",
    ]
    assert cli.main(["k8s", "validate", "--k8s-version", "1.99", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "--k8s-version" in err and "1.25" in err
    assert cli.main(["k8s", "validate", str(tmp_path / "missing.yaml")]) == 2
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["k8s", "validate"])
    assert exit_info.value.code == 2


# -- the step ---------------------------------------------------------------------------------------
def test_step_writes_validates_and_verifies_on_a_second_run(tmp_path):
    path = tmp_path / "nginx-deployment.yaml"
    step = ValidateManifest(path=path, k8s_version="1.30")
    plan = step.plan()
    assert plan.files == {str(path): SEED} and "1.30" in " ".join(plan.notes) and plan.commands == []
    result, ran = execute_and_match(step)
    assert ran == [] and result.status == "pass", result.message
    assert path.read_text(encoding="utf-8") == SEED
    assert result.evidence["schema_version"] == "1.30" and result.evidence["manifest"] == SEED
    assert result.evidence["documents"] == [
        {"index": 1, "apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx-deployment"}
    ]
    again, _ = execute_and_match(ValidateManifest(path=path, k8s_version="1.30"))
    assert again.status == "pass" and again.evidence["already_present"] is True
    assert not list(tmp_path.glob("*.labkit-bak-*"))


def test_step_fails_with_the_field_path_and_refuses_to_replace_a_different_file(tmp_path):
    path = tmp_path / "app.yaml"
    broken = _seed_with("  replicas: 2", "  replicas: -2")
    result, _ = execute_and_match(ValidateManifest(manifest=broken, path=path))
    assert result.status == "fail"
    assert [p["field"] for p in result.evidence["problems"]] == ["spec.replicas"]
    refused = ValidateManifest(path=path).execute("auto")
    assert refused.status == "skipped" and refused.evidence["skip_reason"] == "consent"
    replaced, _ = execute_and_match(ValidateManifest(path=path, overwrite=True, service=True))
    assert replaced.status == "pass" and len(replaced.evidence["documents"]) == 2
    assert len(list(tmp_path.glob("app.yaml.labkit-bak-*"))) == 1
    bad_fields = ValidateManifest(fields=AppFields(name="Bad_Name"), path=tmp_path / "x.yaml").execute("auto")
    assert bad_fields.status == "error" and bad_fields.evidence["field"] == "name"


def test_duplicate_keys_and_int_or_string_fields():
    twice = _seed_with(
        "        image: nginx:1.14.2\n", "        image: nginx:1.14.2\n        image: nginx:1.15\n"
    )
    report = validate_text(twice, load_schemas())
    [problem] = report.errors
    assert (problem.path, problem.finding.code, problem.finding.line) == (
        "spec.template.spec.containers[0].image",
        "k8s.duplicate_key",
        18,
    )
    svc = (DATA / "service.yaml").read_text(encoding="utf-8").replace("targetPort: 9376", "targetPort: [1]")
    with use_lang("en"):
        [problem] = validate_text(svc, load_schemas()).errors
    assert problem.path == "spec.ports[0].targetPort" and "a string or an integer" in problem.finding.message
