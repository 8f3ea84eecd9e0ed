"""k8s/: every overlay renders with `kubectl kustomize` and is accepted by
kubernetes-validate --strict (its bundled schemas: no network); the KEDA
ScaledObject, a CRD, is checked against the schema vendored in k8s/schemas/
(the only kinds without an upstream schema, listed in CRD_SCHEMAS). Then what a
platform team checks: labels, security, probes, drain, disruption budgets,
autoscalers that own their replica counts, one Secret per concern mounted only
where needed, and the connection budget docs/operations.md states.

kubectl is a local binary (no cluster is contacted). Where it is missing the
test is skipped, except in CI, where it fails (as a missing PostgreSQL does)."""

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
SERVICE_OVERLAYS = [name for name in OVERLAYS if not name.endswith(("-migrate", "-replay"))]
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.utils.latest_version())  # the oldest we support, the newest
CRD_SCHEMAS = {("keda.sh/v1alpha1", "ScaledObject"): K8S / "schemas" / "keda.sh-v1alpha1-scaledobject.json"}
PORT = 8080  # TASKJOURNAL_PORT in the pods: every process serves its ops routes there
CLAIMWORK_WAIT_S, PRE_STOP_S = 20, 5

# The Secrets each pod may reference, by component: one per concern, only where needed.
SECRETS = {
    "api-gateway": {"taskjournal-database", "taskjournal-root", "taskjournal-s3", "taskjournal-clients"},
    "artifact-service": {"taskjournal-database", "taskjournal-root", "taskjournal-s3", "taskjournal-clients"},
    "scheduler": {"taskjournal-database", "taskjournal-s3"},
    "claim-resolver": {"taskjournal-database"},
    "dependency-resolver": {"taskjournal-database", "taskjournal-amqp"},
    "relay": {"taskjournal-database", "taskjournal-amqp"},
    "migrate": {"taskjournal-database-owner"},
    "replay": {"taskjournal-database-owner"},
}
LISTENERS = {"api-gateway": 1, "relay": 1}  # a LISTEN connection beside the pool (claimWork wake-ups, the relay)
BACKLOG_METRICS = {"claim-resolver": "taskjournal_claims_expired_backlog",
                   "dependency-resolver": "taskjournal_dependency_events_backlog"}


def kubectl() -> str:
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("kubectl is needed to render k8s/ (set KUBECTL or put it on PATH)")
        pytest.skip("no kubectl on PATH: k8s/ is not rendered")
    return found


def render(overlay: str) -> list[dict]:
    done = subprocess.run([kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def component(doc: dict) -> str:
    return doc["metadata"]["labels"]["app.kubernetes.io/component"]


def container(workload: dict) -> dict:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def workloads(docs: list[dict]) -> list[dict]:
    return of_kind(docs, "Deployment") + of_kind(docs, "Job")


def test_there_are_overlays_for_keda_hpa_and_the_jobs():
    assert {"production", "production-hpa", "production-migrate", "production-replay"} <= set(OVERLAYS)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_and_validates_strictly(rendered, overlay, version):
    for doc in rendered[overlay]:
        crd = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        if crd is not None:
            jsonschema.validate(doc, json.loads(crd.read_text()))
        else:  # raises SchemaNotFoundError for any other kind without a schema
            kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_refuses_an_unknown_field_and_the_crd_schema_a_misspelt_one(rendered):
    deployment = json.loads(json.dumps(of_kind(rendered["production"], "Deployment")[0]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)
    scaled = json.loads(json.dumps(of_kind(rendered["production"], "ScaledObject")[0]))
    scaled["spec"]["maxReplicas"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, json.loads(CRD_SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")].read_text()))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_labels_and_selectors_follow_app_kubernetes_io(rendered, overlay):
    for doc in rendered[overlay]:
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "taskjournal", doc["metadata"]["name"]
        assert {"app.kubernetes.io/part-of", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"} <= set(labels)
    for workload in of_kind(rendered[overlay], "Deployment"):
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector == {"app.kubernetes.io/name": "taskjournal", "app.kubernetes.io/component": component(workload)}
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_unprivileged_on_a_read_only_root(rendered, overlay):
    for workload in workloads(rendered[overlay]):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        security = container(workload)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        mounts = {m["mountPath"]: m["name"] for m in container(workload)["volumeMounts"]}
        assert mounts["/tmp"] in empty_dirs


@pytest.mark.parametrize("overlay", SERVICE_OVERLAYS)
def test_probes_serve_the_ops_routes_and_gateways_drain_their_long_polls(rendered, overlay):
    for workload in of_kind(rendered[overlay], "Deployment"):
        main = container(workload)
        assert main["ports"] == [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
        assert {"name": "TASKJOURNAL_PORT", "value": str(PORT)} in main["env"]
        for probe, path in (("startupProbe", "/__lbheartbeat__"), ("livenessProbe", "/__lbheartbeat__"),
                            ("readinessProbe", "/ready")):
            assert main[probe]["httpGet"] == {"path": path, "port": "http"}, (workload["metadata"]["name"], probe)
        assert main["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(PRE_STOP_S)]
        grace = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        if component(workload) == "api-gateway":
            assert grace >= PRE_STOP_S + CLAIMWORK_WAIT_S + 15
        assert grace > PRE_STOP_S


@pytest.mark.parametrize("overlay", SERVICE_OVERLAYS)
def test_every_deployment_has_a_disruption_budget(rendered, overlay):
    budgets = {tuple(sorted(b["spec"]["selector"]["matchLabels"].items())): b
               for b in of_kind(rendered[overlay], "PodDisruptionBudget")}
    for workload in of_kind(rendered[overlay], "Deployment"):
        budget = budgets[tuple(sorted(workload["spec"]["selector"]["matchLabels"].items()))]
        assert budget["spec"]["maxUnavailable"] == 1


def autoscaled(docs: list[dict]) -> dict[str, dict]:
    """Deployment name -> its autoscaler (an HPA or a KEDA ScaledObject)."""
    owners: dict[str, dict] = {}
    for scaler in of_kind(docs, "HorizontalPodAutoscaler") + of_kind(docs, "ScaledObject"):
        target = scaler["spec"]["scaleTargetRef"]["name"]
        assert target not in owners, f"two autoscalers fight over {target}"
        owners[target] = scaler
    return owners


@pytest.mark.parametrize("overlay", SERVICE_OVERLAYS)
def test_an_autoscaled_deployment_names_no_replicas_and_the_others_do(rendered, overlay):
    owners = autoscaled(rendered[overlay])
    assert {"api-gateway", "claim-resolver", "dependency-resolver"} <= set(owners)
    for workload in of_kind(rendered[overlay], "Deployment"):
        name = workload["metadata"]["name"]
        assert ("replicas" in workload["spec"]) == (name not in owners), name


def test_keda_scales_the_resolvers_on_their_backlog(rendered):
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(rendered["production"], "ScaledObject")}
    assert set(scaled) == set(BACKLOG_METRICS)
    for name, metric in BACKLOG_METRICS.items():
        (trigger,) = scaled[name]["spec"]["triggers"]
        assert trigger["type"] == "prometheus" and metric in trigger["metadata"]["query"]
    assert not of_kind(rendered["production-hpa"], "ScaledObject")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_pod_gets_only_the_secrets_of_its_concerns(rendered, overlay):
    for workload in workloads(rendered[overlay]):
        main, pod = container(workload), workload["spec"]["template"]["spec"]
        used = {e["valueFrom"]["secretKeyRef"]["name"] for e in main.get("env", []) if "valueFrom" in e}
        used |= {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
        assert not any("secretRef" in source for source in main.get("envFrom", [])), "no Secret as a whole"
        assert used == SECRETS[component(workload)], workload["metadata"]["name"]


def test_the_jobs_migrate_and_replay_with_the_owners_url(rendered):
    (migrate,) = of_kind(rendered["production-migrate"], "Job")
    (replay,) = of_kind(rendered["production-replay"], "Job")
    assert container(migrate)["args"] == ["migrate"] and container(replay)["args"] == ["replay", "--all"]
    images = {container(w)["image"] for docs in rendered.values() for w in workloads(docs)}
    assert len(images) == 1, "a release's Jobs run its Deployments' image"


@pytest.mark.parametrize("overlay", SERVICE_OVERLAYS)
def test_the_services_require_the_schema_the_migrate_job_made(rendered, overlay):
    (settings,) = of_kind(rendered[overlay], "ConfigMap")
    assert settings["data"]["TASKJOURNAL_SCHEMA"] == "require"


@pytest.mark.parametrize("overlay", SERVICE_OVERLAYS)
def test_the_connection_budget_in_the_docs_is_the_manifests(rendered, overlay):
    """Database connections at most: per pod the pool (TASKJOURNAL_EXECUTOR_THREADS,
    at least the 4 kept open) plus its LISTEN connection; pods: the replicas (an
    autoscaler's maximum) plus the rolling update's surge; plus one Job."""
    owners, total = autoscaled(rendered[overlay]), 0
    for workload in of_kind(rendered[overlay], "Deployment"):
        name, env = workload["metadata"]["name"], {e["name"]: e.get("value") for e in container(workload)["env"]}
        scaler = owners.get(name, {}).get("spec", {})
        pods = scaler.get("maxReplicas") or scaler.get("maxReplicaCount") or workload["spec"]["replicas"]
        surge = math.ceil(pods * int(workload["spec"]["strategy"]["rollingUpdate"]["maxSurge"].rstrip("%")) / 100)
        total += (pods + surge) * (max(4, int(env["TASKJOURNAL_EXECUTOR_THREADS"])) + LISTENERS.get(name, 0))
    total += 16  # a migrate or replay Job (the default 16 threads)
    assert f"**{total} connections**" in (ROOT / "docs" / "operations.md").read_text()


def selected_components(policy: dict) -> set[str]:
    selector = policy["spec"]["podSelector"]
    if "matchLabels" in selector:
        return {selector["matchLabels"].get("app.kubernetes.io/component", "*")}
    (by_component,) = [e for e in selector["matchExpressions"] if e["key"] == "app.kubernetes.io/component"]
    return set(by_component["values"])


def test_network_policies_deny_by_default_and_open_only_what_each_service_needs(rendered):
    policies = of_kind(rendered["production"], "NetworkPolicy")
    deny = [p for p in policies if not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert [set(p["spec"]["policyTypes"]) for p in deny] == [{"Ingress", "Egress"}]
    egress: dict[int, set[str]] = {}
    for policy in policies:
        for rule in policy["spec"].get("egress", []):
            for port in rule["ports"]:
                egress.setdefault(port["port"], set()).update(selected_components(policy))
    assert egress == {53: {"*", "migrate", "replay"}, 5432: {"*", "migrate", "replay"},
                      5672: {"relay", "dependency-resolver"}, 5671: {"relay", "dependency-resolver"},
                      443: {"artifact-service", "scheduler"}, 8080: {"api-gateway"}}
    (from_ingress,) = [p for p in policies if p["metadata"]["name"] == "taskjournal-from-ingress"]
    assert selected_components(from_ingress) == {"api-gateway", "artifact-service"}
