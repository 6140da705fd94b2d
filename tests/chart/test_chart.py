"""Chart tests: the real Helm engine (helm-python-sdk, offline) lints and
renders k8s/helm/sigil; kubernetes-validate checks every manifest against
the Kubernetes schemas (strict: unknown fields fail); the rest asserts what
each values switch renders.

Run with `.venv/bin/python -m pytest -q tests/chart` (tests/run.sh does).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "k8s" / "helm" / "sigil"
FULL = yaml.safe_load((Path(__file__).parent / "values-full.yaml").read_text())
RELEASE, NAMESPACE = "rel", "sigil-test"
PREFIX = f"{RELEASE}-sigil"

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the
# newest kubernetes-validate knows.
KUBE_VERSIONS = ["1.30.0", "1.37.0"]

# The least a working install needs: a Redis.
MINIMAL = {"redis": {"external": {"host": "redis.data.svc"}}}
BUNDLED = {"redis": {"bundled": {"enabled": True}}}

SERVICES = {
    # values key: (component, binary, health name, gRPC port)
    "issuer": ("issuer", "sigil-issuer", "sigil.v1.IssuerService", 50051),
    "validator": ("validator", "sigil-validator", "sigil.v1.ValidatorService", 50052),
    "edgeToken": ("edge-token", "sigil-edge-token", "sigil.v1.EdgeTokenService", 50053),
}

# Environment variables the chart sets that are not in README's config
# table yet: SIGIL_METRICS_LISTEN and SIGIL_HTTP_LISTEN are being added to
# the binaries; SIGIL_REDIS_PASSWORD is the chart's own, expanded into
# SIGIL_REDIS_URL by Kubernetes.
ENV_NOT_IN_README = {"SIGIL_METRICS_LISTEN", "SIGIL_HTTP_LISTEN", "SIGIL_REDIS_PASSWORD"}
OTEL_ENV = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"}


def merged(*layers: dict) -> dict:
    """Deep-merges value layers, later ones winning."""
    out: dict = {}
    for layer in layers:
        _merge_into(out, copy.deepcopy(layer))
    return out


def _merge_into(target: dict, layer: dict) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = value


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key repeated in one mapping, as the
    Kubernetes API does; PyYAML would silently keep the last."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = {key for key in keys if keys.count(key) > 1}
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"repeated keys {sorted(repeated)}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def render_files(values: dict | None) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def render(values: dict | None) -> list[dict]:
    """Every manifest the chart renders for `values` (NOTES.txt aside)."""
    docs = []
    for path, text in sorted(render_files(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.load_all(text, Loader=UniqueKeyLoader) if doc)
    return docs


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = of_kind(docs, kind)
    assert name in found, f"no {kind} {name}; have {sorted(found)}"
    return found[name]


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def env_of(deployment: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container(deployment)["env"]}


def lint_failures(values: dict | None) -> list:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    warnings = [m for m in report["messages"] if m["severity"] >= 2]
    return report["errors"] + warnings


# --- lint, render and schema validation -------------------------------------


@pytest.mark.parametrize(
    "values", [None, MINIMAL, BUNDLED, FULL], ids=["defaults", "minimal", "bundled", "full"])
def test_chart_lints_strictly(values):
    # Helm's lint mode logs `fail` instead of failing, so the defaults lint
    # clean although they do not render (next test).
    assert lint_failures(values) == []


def test_default_values_ask_for_a_redis():
    # The services are separate processes: without Redis they cannot share
    # sessions, so the chart refuses to render rather than install a
    # deployment that cannot work.
    with pytest.raises(helm.HelmRenderError, match="set redis.external.host"):
        render(None)


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize(
    "values",
    [MINIMAL, BUNDLED, FULL, merged(FULL, {"redis": {"bundled": {"persistence": {"enabled": False}}}})],
    ids=["minimal", "bundled", "full", "full-ephemeral-redis"],
)
def test_every_manifest_is_valid_kubernetes(values, kube_version):
    docs = render(values)
    assert docs
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            continue  # a CRD, not in the Kubernetes schemas: see its own test
        kubernetes_validate.validate(doc, kube_version, strict=True)


def test_strict_validation_catches_a_misplaced_field():
    # Proves the check above is not vacuous.
    deployment = one(render(MINIMAL), "Deployment", f"{PREFIX}-issuer")
    container(deployment)["readinesProbe"] = {"grpc": {"port": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)


@pytest.mark.parametrize(
    "bad",
    [
        {"issuer": {"replicaCont": 3}},
        {"validator": {"replicaCount": "three"}},
        {"secret": {"adminKeys": ["too-short"]}},
        {"secret": {"masterKey": "not base64 of 32 bytes"}},
        {"config": {"logFormat": "xml"}},
        {"config": {"redisTimeout": "soon"}},
    ],
    ids=["unknown-key", "wrong-type", "short-admin-key", "bad-master-key", "log-format", "duration"],
)
def test_schema_refuses_bad_values(bad):
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(merged(MINIMAL, bad))


def test_full_values_pass_the_schema():
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(FULL)


# --- what each switch renders -----------------------------------------------


def test_defaults_render_one_deployment_and_service_per_service():
    docs = render(MINIMAL)
    for component, binary, _, port in SERVICES.values():
        deployment = one(docs, "Deployment", f"{PREFIX}-{component}")
        assert deployment["spec"]["replicas"] == 1
        assert container(deployment)["command"] == [binary]
        assert env_of(deployment)["SIGIL_LISTEN"]["value"] == f"0.0.0.0:{port}"
        assert env_of(deployment)["OTEL_SERVICE_NAME"]["value"] == binary
        service = one(docs, "Service", f"{PREFIX}-{component}")
        assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["grpc"] == port
    kinds = {doc["kind"] for doc in docs}
    assert kinds == {"ConfigMap", "Secret", "Deployment", "Service"}


def test_every_resource_has_the_standard_labels():
    for doc in render(FULL):
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "sigil"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert "helm.sh/chart" in labels and "app.kubernetes.io/version" in labels
        if doc["kind"] in {"Deployment", "Service", "StatefulSet", "HorizontalPodAutoscaler"}:
            assert labels["app.kubernetes.io/component"] in {
                "issuer", "validator", "edge-token", "redis"}


@pytest.mark.parametrize("key", SERVICES)
def test_each_service_can_be_disabled(key):
    off = merged(FULL, {key: {"enabled": False}})
    docs = render(off)
    component = SERVICES[key][0]
    names = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    assert not {name for name in names if name[1] == f"{PREFIX}-{component}"}
    for other_key, (other, *_rest) in SERVICES.items():
        if other_key != key:
            assert ("Deployment", f"{PREFIX}-{other}") in names
    monitor = one(docs, "ServiceMonitor", PREFIX)
    (selected,) = monitor["spec"]["selector"]["matchExpressions"]
    assert component not in selected["values"]


def test_pdb_only_with_more_than_one_replica():
    assert of_kind(render(MINIMAL), "PodDisruptionBudget") == {}
    three = render(merged(MINIMAL, {"validator": {"replicaCount": 3}}))
    assert set(of_kind(three, "PodDisruptionBudget")) == {f"{PREFIX}-validator"}
    pdb = one(three, "PodDisruptionBudget", f"{PREFIX}-validator")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "validator"
    switched_off = merged(MINIMAL, {"validator": {"replicaCount": 3, "podDisruptionBudget": {"enabled": False}}})
    assert of_kind(render(switched_off), "PodDisruptionBudget") == {}


def test_pdb_follows_autoscaling_min_replicas():
    one_min = {"issuer": {"replicaCount": 5, "autoscaling": {"enabled": True, "minReplicas": 1}}}
    assert of_kind(render(merged(MINIMAL, one_min)), "PodDisruptionBudget") == {}
    two_min = {"issuer": {"replicaCount": 1, "autoscaling": {"enabled": True, "minReplicas": 2}}}
    assert set(of_kind(render(merged(MINIMAL, two_min)), "PodDisruptionBudget")) == {f"{PREFIX}-issuer"}


def test_full_values_render_pdbs_with_their_settings():
    pdbs = of_kind(render(FULL), "PodDisruptionBudget")
    assert set(pdbs) == {f"{PREFIX}-issuer", f"{PREFIX}-validator", f"{PREFIX}-edge-token"}
    assert pdbs[f"{PREFIX}-issuer"]["spec"] == {
        "minAvailable": 2,
        "selector": {"matchLabels": {
            "app.kubernetes.io/name": "sigil",
            "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": "issuer"}},
    }


def test_autoscaling_renders_an_hpa_and_leaves_replicas_to_it():
    docs = render(FULL)
    hpa = one(docs, "HorizontalPodAutoscaler", f"{PREFIX}-validator")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": f"{PREFIX}-validator"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": 60, "memory": 80}
    assert "replicas" not in one(docs, "Deployment", f"{PREFIX}-validator")["spec"]
    assert one(docs, "Deployment", f"{PREFIX}-issuer")["spec"]["replicas"] == 3
    assert set(of_kind(docs, "HorizontalPodAutoscaler")) == {f"{PREFIX}-validator"}


def test_autoscaling_without_targets_leaves_the_hpa_default():
    values = merged(MINIMAL, {"issuer": {"autoscaling": {
        "enabled": True, "targetCPUUtilizationPercentage": None}}})
    hpa = one(render(values), "HorizontalPodAutoscaler", f"{PREFIX}-issuer")
    assert "metrics" not in hpa["spec"]
    kubernetes_validate.validate(hpa, KUBE_VERSIONS[0], strict=True)


def test_network_policy_only_when_enabled():
    assert of_kind(render(MINIMAL), "NetworkPolicy") == {}
    assert of_kind(render(merged(FULL, {"networkPolicy": {"enabled": False}})), "NetworkPolicy") == {}
    policies = of_kind(render(FULL), "NetworkPolicy")
    assert set(policies) == {f"{PREFIX}-{c}" for c in ("issuer", "validator", "edge-token", "redis")}


def test_network_policy_opens_the_issuer_to_admin_clients_and_the_validator_only():
    policies = of_kind(render(FULL), "NetworkPolicy")
    grpc_rule, metrics_rule = policies[f"{PREFIX}-issuer"]["spec"]["ingress"]
    assert grpc_rule["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    peers = grpc_rule["from"]
    assert {"podSelector": {"matchLabels": {"sigil.dev/issuer-client": "true"}}} in peers
    assert {"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "sigil", "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": "validator"}}} in peers
    assert FULL["networkPolicy"]["issuerFrom"][0] in peers
    assert len(peers) == 3
    assert metrics_rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]

    edge_grpc, _ = policies[f"{PREFIX}-edge-token"]["spec"]["ingress"]
    assert {p["port"] for p in edge_grpc["ports"]} == {"grpc", "http"}
    assert edge_grpc["from"] == FULL["networkPolicy"]["clientsFrom"]


def test_network_policy_admits_only_sigil_pods_to_redis():
    policy = one(render(FULL), "NetworkPolicy", f"{PREFIX}-redis")
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == RELEASE
    (expression,) = peer["podSelector"]["matchExpressions"]
    assert expression["operator"] == "In"
    assert set(expression["values"]) == {"issuer", "validator", "edge-token"}
    # No NetworkPolicy for an external Redis: it is not the chart's.
    external = merged(FULL, {"redis": {"bundled": {"enabled": False}, "external": {"host": "r"}}})
    assert f"{PREFIX}-redis" not in of_kind(render(external), "NetworkPolicy")


def test_bundled_redis_only_when_enabled():
    assert of_kind(render(MINIMAL), "StatefulSet") == {}
    docs = render(BUNDLED)
    statefulset = one(docs, "StatefulSet", f"{PREFIX}-redis")
    assert statefulset["spec"]["replicas"] == 1
    assert one(docs, "Service", f"{PREFIX}-redis")
    for component, *_ in SERVICES.values():
        url = env_of(one(docs, "Deployment", f"{PREFIX}-{component}"))["SIGIL_REDIS_URL"]["value"]
        assert url == f"redis://{PREFIX}-redis:6379/0"


def test_external_redis_url_is_composed_from_host_port_db_and_user():
    values = merged(MINIMAL, {"redis": {"external": {"port": 6380, "db": 2, "username": "sigil"}}})
    deployment = one(render(values), "Deployment", f"{PREFIX}-validator")
    assert env_of(deployment)["SIGIL_REDIS_URL"]["value"] == "redis://sigil@redis.data.svc:6380/2"


def test_redis_password_comes_from_the_secret_by_env_expansion():
    values = merged(MINIMAL, {"redis": {"auth": {"enabled": True}}, "secret": {"redisPassword": "pw-x"}})
    deployment = one(render(values), "Deployment", f"{PREFIX}-issuer")
    env = container(deployment)["env"]
    names = [item["name"] for item in env]
    # Kubernetes expands $(VAR) only from variables defined earlier.
    assert names.index("SIGIL_REDIS_PASSWORD") < names.index("SIGIL_REDIS_URL")
    assert env[names.index("SIGIL_REDIS_PASSWORD")]["valueFrom"]["secretKeyRef"] == {
        "name": f"{PREFIX}-secret", "key": "redis-password"}
    assert env[names.index("SIGIL_REDIS_URL")]["value"] == "redis://:$(SIGIL_REDIS_PASSWORD)@redis.data.svc:6379/0"


def test_redis_auth_without_a_password_is_refused():
    with pytest.raises(helm.HelmRenderError, match="secret.redisPassword"):
        render(merged(MINIMAL, {"redis": {"auth": {"enabled": True}}}))


def test_no_secret_value_outside_the_secret():
    secrets = [*FULL["secret"]["adminKeys"], FULL["secret"]["masterKey"], FULL["secret"]["redisPassword"]]
    for path, text in render_files(FULL).items():
        if path.endswith("templates/secret.yaml"):
            continue
        for secret in secrets:
            assert secret not in text, f"{path} holds a secret value"
    secret = one(render(FULL), "Secret", f"{PREFIX}-secret")
    assert set(secret["data"]) == {"admin-keys", "master-key", "redis-password"}


def test_existing_secret_skips_the_chart_secret():
    values = merged(FULL, {"secret": {"existingSecret": "sigil-keys"}})
    docs = render(values)
    assert of_kind(docs, "Secret") == {}
    for component, *_ in SERVICES.values():
        deployment = one(docs, "Deployment", f"{PREFIX}-{component}")
        env = env_of(deployment)
        for name in ("SIGIL_ADMIN_KEYS", "SIGIL_MASTER_KEY", "SIGIL_REDIS_PASSWORD"):
            assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "sigil-keys"
        assert "checksum/secret" not in deployment["spec"]["template"]["metadata"]["annotations"]
    redis = container(one(docs, "StatefulSet", f"{PREFIX}-redis"))
    assert {e["name"]: e for e in redis["env"]}["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "sigil-keys"


def test_admin_and_master_keys_are_optional_references_and_redis_password_is_not():
    env = env_of(one(render(FULL), "Deployment", f"{PREFIX}-issuer"))
    assert env["SIGIL_ADMIN_KEYS"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert env["SIGIL_MASTER_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "optional" not in env["SIGIL_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]


def annotations(values: dict, component: str = "validator") -> dict:
    deployment = one(render(values), "Deployment", f"{PREFIX}-{component}")
    return deployment["spec"]["template"]["metadata"]["annotations"]


def test_checksum_annotations_change_with_config_and_secrets_only():
    base = annotations(FULL)
    assert re.fullmatch(r"[0-9a-f]{64}", base["checksum/config"])
    config_changed = annotations(merged(FULL, {"config": {"sessionLifespan": "12h"}}))
    assert config_changed["checksum/config"] != base["checksum/config"]
    assert config_changed["checksum/secret"] == base["checksum/secret"]
    secret_changed = annotations(merged(FULL, {"secret": {"adminKeys": ["another-admin-key-dddddddddddddddd"]}}))
    assert secret_changed["checksum/secret"] != base["checksum/secret"]
    assert secret_changed["checksum/config"] == base["checksum/config"]
    scaled = annotations(merged(FULL, {"edgeToken": {"replicaCount": 4}}))
    assert scaled["checksum/config"] == base["checksum/config"]
    assert base["example.com/team"] == "identity"


def test_probes_are_grpc_against_each_service_health():
    docs = render(MINIMAL)
    for component, _, health, port in SERVICES.values():
        deployment = one(docs, "Deployment", f"{PREFIX}-{component}")
        main = container(deployment)
        assert main["readinessProbe"]["grpc"] == {"port": port, "service": health}
        assert main["livenessProbe"]["grpc"] == {"port": port, "service": ""}
        grpc_port = {p["name"]: p["containerPort"] for p in main["ports"]}["grpc"]
        assert grpc_port == port
        sleep = main["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > sleep + 5, "the grace period must outlast the pre-stop sleep and the drain"


def test_edge_token_serves_unleash_http_on_its_own_port():
    values = merged(MINIMAL, {"ports": {"edgeTokenHttp": 4242}})
    docs = render(values)
    deployment = one(docs, "Deployment", f"{PREFIX}-edge-token")
    assert env_of(deployment)["SIGIL_HTTP_LISTEN"]["value"] == "0.0.0.0:4242"
    assert {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}["http"] == 4242
    service = one(docs, "Service", f"{PREFIX}-edge-token")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["http"] == 4242
    for component in ("issuer", "validator"):
        assert "SIGIL_HTTP_LISTEN" not in env_of(one(docs, "Deployment", f"{PREFIX}-{component}"))


def test_validator_finds_the_issuer_and_metrics_listen_on_their_port():
    docs = render(MINIMAL)
    config = one(docs, "ConfigMap", f"{PREFIX}-config")["data"]
    assert config["SIGIL_ISSUER_URL"] == f"http://{PREFIX}-issuer:50051"
    assert config["SIGIL_METRICS_LISTEN"] == "0.0.0.0:9464"
    assert config["SIGIL_LOG_FORMAT"] == "json"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in config
    full = one(render(FULL), "ConfigMap", f"{PREFIX}-config")["data"]
    assert full["OTEL_EXPORTER_OTLP_ENDPOINT"] == FULL["config"]["otlpEndpoint"]
    # config.extraEnv replaces a variable the chart sets, without a repeated
    # key (render() refuses those).
    assert full["SIGIL_MAX_PENDING_TTL"] == "30m"


def test_every_sigil_variable_the_chart_sets_is_documented():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`(SIGIL_[A-Z_]+)`", readme))
    docs = render(FULL)
    used = set(one(docs, "ConfigMap", f"{PREFIX}-config")["data"])
    for component, *_ in SERVICES.values():
        used |= set(env_of(one(docs, "Deployment", f"{PREFIX}-{component}")))
    unknown = used - documented - ENV_NOT_IN_README - OTEL_ENV
    assert unknown == set()


def test_pods_run_locked_down():
    docs = render(FULL)
    pods = [d["spec"]["template"] for d in docs if d["kind"] in {"Deployment", "StatefulSet"}]
    assert len(pods) == 4
    for pod in pods:
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for main in spec["containers"]:
            context = main["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}


def test_service_monitor_only_when_enabled():
    assert of_kind(render(MINIMAL), "ServiceMonitor") == {}
    monitor = one(render(FULL), "ServiceMonitor", PREFIX)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("metrics", "/metrics", "15s")
    (selected,) = monitor["spec"]["selector"]["matchExpressions"]
    assert set(selected["values"]) == {"issuer", "validator", "edge-token"}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}


def test_images_fall_back_to_the_shared_image():
    docs = render(FULL)
    images = {c: container(one(docs, "Deployment", f"{PREFIX}-{c}"))["image"] for c in ("issuer", "validator")}
    assert images == {
        "issuer": "registry.example.com/sigil:0.1.0-issuer",
        "validator": "registry.example.com/sigil:0.1.0",
    }
    default = container(one(render(MINIMAL), "Deployment", f"{PREFIX}-issuer"))["image"]
    assert default == "sigil:0.1.0"


def test_notes_show_grpcurl_lines_for_the_release():
    notes = render_files(MINIMAL)["sigil/templates/NOTES.txt"]
    assert f"port-forward svc/{PREFIX}-validator 50052:50052" in notes
    assert "sigil.v1.ValidatorService/WhoAmI" in notes
    assert "grpcurl -plaintext" in notes
    assert "WARNING: no admin keys" in notes
    assert "WARNING" not in render_files(FULL)["sigil/templates/NOTES.txt"]


def _value_paths(values: dict, prefix: str = "") -> list[str]:
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        # Maps meant to be filled by users are one value; the rest recurse.
        if isinstance(value, dict) and value and key not in {"resources", "issuerClientLabels", "podSecurityContext", "securityContext"}:
            paths.extend(_value_paths(value, f"{path}."))
        else:
            paths.append(path)
    return paths


def test_chart_readme_lists_every_value():
    readme = (CHART / "README.md").read_text()
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    shared = {k: v for k, v in defaults.items() if k not in SERVICES}
    paths = _value_paths(shared) + [f"<service>.{p}" for p in _value_paths(defaults["issuer"])]
    missing = [path for path in paths if f"`{path}`" not in readme]
    assert missing == []
    # The three service blocks have the same shape.
    assert _value_paths(defaults["issuer"]) == _value_paths(defaults["validator"]) == _value_paths(defaults["edgeToken"])


TLS = merged(MINIMAL, {"tls": {"enabled": True, "secretName": "sigil-tls"}})


def test_without_tls_probes_ask_the_grpc_port_and_nothing_is_mounted():
    docs = render(MINIMAL)
    config = one(docs, "ConfigMap", f"{PREFIX}-config")["data"]
    assert not {name for name in config if name.startswith("SIGIL_TLS_")}
    assert "SIGIL_HEALTH_LISTEN" not in config
    for key, (component, _binary, health, port) in SERVICES.items():
        deployment = one(docs, "Deployment", f"{PREFIX}-{component}")
        main = container(deployment)
        assert main["readinessProbe"]["grpc"] == {"port": port, "service": health}
        assert "volumeMounts" not in main
        assert "volumes" not in deployment["spec"]["template"]["spec"]


def test_tls_mounts_the_secret_and_points_every_service_at_its_files():
    docs = render(TLS)
    config = one(docs, "ConfigMap", f"{PREFIX}-config")["data"]
    assert config["SIGIL_TLS_CERT"] == "/etc/sigil/tls/tls.crt"
    assert config["SIGIL_TLS_KEY"] == "/etc/sigil/tls/tls.key"
    assert config["SIGIL_TLS_CA"] == "/etc/sigil/tls/ca.crt"
    assert config["SIGIL_TLS_RELOAD_INTERVAL"] == "30s"
    assert "SIGIL_TLS_CLIENT_CA" not in config
    # The validator calls the issuer over TLS, by the name the certificate
    # must carry.
    assert config["SIGIL_ISSUER_URL"] == f"https://{PREFIX}-issuer:50051"
    for component, *_ in SERVICES.values():
        deployment = one(docs, "Deployment", f"{PREFIX}-{component}")
        pod = deployment["spec"]["template"]["spec"]
        assert pod["volumes"] == [{"name": "tls", "secret": {"secretName": "sigil-tls"}}]
        # A whole-directory mount, never subPath: renewals appear in place.
        assert container(deployment)["volumeMounts"] == [
            {"name": "tls", "mountPath": "/etc/sigil/tls", "readOnly": True}]


def test_tls_services_say_their_ports_are_https():
    for component, *_ in SERVICES.values():
        service = one(render(TLS), "Service", f"{PREFIX}-{component}")
        assert {port["appProtocol"] for port in service["spec"]["ports"]} == {"https"}
        plain = one(render(MINIMAL), "Service", f"{PREFIX}-{component}")
        assert "kubernetes.io/h2c" in {port["appProtocol"] for port in plain["spec"]["ports"]}


def test_tls_probes_ask_the_plaintext_health_port():
    docs = render(TLS)
    config = one(docs, "ConfigMap", f"{PREFIX}-config")["data"]
    assert config["SIGIL_HEALTH_LISTEN"] == "0.0.0.0:8086"
    for component, _binary, health, _port in SERVICES.values():
        main = container(one(docs, "Deployment", f"{PREFIX}-{component}"))
        assert main["readinessProbe"]["grpc"] == {"port": 8086, "service": health}
        assert main["livenessProbe"]["grpc"] == {"port": 8086, "service": ""}
        assert {"name": "health", "containerPort": 8086, "protocol": "TCP"} in main["ports"]


def test_mtls_requires_client_certificates_of_the_secrets_ca():
    config = one(render(FULL), "ConfigMap", f"{PREFIX}-config")["data"]
    assert config["SIGIL_TLS_CLIENT_CA"] == "/etc/sigil/tls/ca.crt"
    assert config["SIGIL_TLS_RELOAD_INTERVAL"] == "10s"


def test_tls_without_a_secret_is_refused():
    with pytest.raises(helm.HelmRenderError, match="tls.secretName"):
        render(merged(MINIMAL, {"tls": {"enabled": True}}))


def test_service_monitor_scrapes_over_tls_with_the_secret():
    monitored = {"serviceMonitor": {"enabled": True}}
    (endpoint,) = one(render(merged(TLS, monitored)), "ServiceMonitor", PREFIX)["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {
        "serverName": f"{PREFIX}-issuer",
        "ca": {"secret": {"name": "sigil-tls", "key": "ca.crt"}},
    }
    # With mTLS Prometheus presents the services' certificate too.
    (endpoint,) = one(render(FULL), "ServiceMonitor", PREFIX)["spec"]["endpoints"]
    assert endpoint["tlsConfig"]["cert"] == {"secret": {"name": "sigil-tls", "key": "tls.crt"}}
    assert endpoint["tlsConfig"]["keySecret"] == {"name": "sigil-tls", "key": "tls.key"}
    (endpoint,) = one(render(merged(MINIMAL, monitored)), "ServiceMonitor", PREFIX)["spec"]["endpoints"]
    assert endpoint["scheme"] == "http" and "tlsConfig" not in endpoint


def test_notes_show_grpcurl_over_tls_when_tls_is_on():
    notes = render_files(merged(TLS, {"tls": {"clientCA": True}}))["sigil/templates/NOTES.txt"]
    assert "-plaintext" not in notes
    assert f"-cacert ca.crt -cert client.crt -key client.key -servername {PREFIX}-validator" in notes
    assert "get secret sigil-tls" in notes


# --- a whole Redis URL and a Redis CA from the cluster's own objects ---------

URL_SECRET = {"redis": {"urlSecret": {"name": "redis-conn", "key": "url"}}}


def test_redis_url_from_a_secret_is_referenced_never_built():
    # No host needed: the URL (rediss://, redis+cluster://, an ACL user and
    # its password) is all in the Secret, and nothing of it in a manifest.
    docs = render(merged(URL_SECRET, {"redis": {"auth": {"enabled": True}}}))
    for component, *_ in SERVICES.values():
        env = env_of(one(docs, "Deployment", f"{PREFIX}-{component}"))
        assert env["SIGIL_REDIS_URL"] == {
            "name": "SIGIL_REDIS_URL",
            "valueFrom": {"secretKeyRef": {"name": "redis-conn", "key": "url"}},
        }
        assert "SIGIL_REDIS_PASSWORD" not in env
        assert "SIGIL_REDIS_CA_FILE" not in env
    # redis.auth is ignored: the chart's Secret wants no Redis password.
    assert "redis-password" not in one(docs, "Secret", f"{PREFIX}-secret").get("data", {})
    notes = next(text for path, text in render_files(URL_SECRET).items() if path.endswith("NOTES.txt"))
    assert "the URL in Secret redis-conn (key url)" in notes


def test_redis_url_secret_and_the_bundled_redis_exclude_each_other():
    with pytest.raises(helm.HelmRenderError, match="redis.urlSecret and redis.bundled.enabled"):
        render(merged(URL_SECRET, BUNDLED))


@pytest.mark.parametrize(
    "ca, volume",
    [
        ({"secretName": "redis-tls"}, {"name": "redis-ca", "secret": {"secretName": "redis-tls"}}),
        ({"configMapName": "redis-roots", "key": "roots.pem"},
         {"name": "redis-ca", "configMap": {"name": "redis-roots"}}),
    ],
    ids=["secret", "configmap"],
)
def test_redis_ca_is_mounted_and_named_in_sigil_redis_ca_file(ca, volume):
    values = merged(URL_SECRET, {"redis": {"ca": ca}})
    docs = render(values)
    key = ca.get("key", "ca.crt")
    for component, *_ in SERVICES.values():
        deployment = one(docs, "Deployment", f"{PREFIX}-{component}")
        assert env_of(deployment)["SIGIL_REDIS_CA_FILE"]["value"] == f"/etc/sigil/redis-ca/{key}"
        assert deployment["spec"]["template"]["spec"]["volumes"] == [volume]
        assert container(deployment)["volumeMounts"] == [
            {"name": "redis-ca", "mountPath": "/etc/sigil/redis-ca", "readOnly": True}]
    for kube_version in KUBE_VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, kube_version, strict=True)


def test_redis_ca_beside_tls_mounts_both():
    values = merged(TLS, URL_SECRET, {"redis": {"ca": {"secretName": "redis-tls"}}})
    deployment = one(render(values), "Deployment", f"{PREFIX}-validator")
    assert [volume["name"] for volume in deployment["spec"]["template"]["spec"]["volumes"]] == [
        "tls", "redis-ca"]
    assert [mount["mountPath"] for mount in container(deployment)["volumeMounts"]] == [
        "/etc/sigil/tls", "/etc/sigil/redis-ca"]


def test_redis_ca_from_both_a_secret_and_a_configmap_is_refused():
    values = merged(MINIMAL, {"redis": {"ca": {"secretName": "a", "configMapName": "b"}}})
    with pytest.raises(helm.HelmRenderError, match="not both"):
        render(values)
