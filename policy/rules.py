"""meshstack's CrossGuard rules, as plain policy objects (no `PolicyPack` here).

`__main__.py` wraps `ALL` in the pack; tests import this module only, because constructing a
`PolicyPack` starts the analyzer's gRPC server and never returns.

Every validation reads the property bag CrossGuard hands it: camelCase wire names
(`spec.template.spec.containers[0].resources.limits`), wrapped in read-only `Mapping` /
`Sequence` proxies that raise `UnknownValueError` on values unknown during preview. So the
helpers below test for `Mapping` and `Sequence`, never `dict` or `list`.

Resource rules see inputs before anything is created; the one stack rule sees every resource's
outputs once the program has registered them all. A real `pulumi preview` also shows these
rules every object a v4 Chart renders (its children), which the unit tests cannot: under mocks
only the chart resource and the objects the program writes itself exist.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

PACK_NAME = "meshstack"
ENFORCEMENT = EnforcementLevel.MANDATORY

# --- Reading the property bag ----------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> list[Any]:
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value)
    return []


def _at(value: Any, *path: str) -> Any:
    """The value at `path` below `value`, or None when any step is missing."""
    for key in path:
        value = _map(value).get(key)
        if value is None:
            return None
    return value


def kind_of(resource_type: str) -> str:
    """`kubernetes:apps/v1:Deployment` → `Deployment`; empty for non-Kubernetes types."""
    package, _, rest = resource_type.partition(":")
    return rest.rpartition(":")[2] if package == "kubernetes" else ""


# Where each workload kind keeps its pod template (metadata + spec), any API version.
_POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def pod_template(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod (for a Pod) or pod template of a workload, or None for any other type.

    Patch types (`DeploymentPatch`, ...) are partial by design and are not workloads here.
    """
    kind = kind_of(resource_type)
    if kind not in _POD_TEMPLATE_PATHS:
        return None
    path = _POD_TEMPLATE_PATHS[kind]
    return _map(_at(props, *path)) if path else props


def containers(pod: Mapping[str, Any], *, ephemeral: bool = True) -> Iterator[tuple[str, Any]]:
    """(`containers[i]`-style location, container) for every container of a pod template."""
    groups = ["initContainers", "containers"] + (["ephemeralContainers"] if ephemeral else [])
    spec = _map(pod.get("spec"))
    for group in groups:
        for i, container in enumerate(_seq(spec.get(group))):
            yield f"{group}[{i}]", _map(container)


def _label(container: Mapping[str, Any], where: str) -> str:
    return f"container {container.get('name') or '?'!r} ({where})"


# --- Rule: images pinned ---------------------------------------------------------------------

_DIGEST = re.compile(r"@[a-z0-9]+([+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")


def image_problem(image: Any) -> str | None:
    """Why `image` is not pinned, or None when it names a tag other than `latest` or a digest."""
    if not isinstance(image, str) or not image.strip():
        return "has no image"
    if _DIGEST.search(image):
        return None
    # The tag follows the last ':' of the last path component (a ':' before a '/' is a
    # registry port, as in `localhost:5000/app`).
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag, so it floats to `latest`"
    tag = last.rsplit(":", 1)[1]
    if not tag:
        return f"image {image!r} has an empty tag"
    if tag.lower() == "latest":
        return f"image {image!r} uses the moving tag `latest`"
    return None


def validate_images_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    for where, container in containers(pod):
        problem = image_problem(container.get("image"))
        if problem:
            report(
                f"{_label(container, where)} {problem}; pin an exact version tag "
                "(or a digest) in components/versions.py.",
                None,
            )


images_pinned = ResourceValidationPolicy(
    name="images-pinned",
    description="Containers use an exact image tag or digest: no `latest`, no missing tag.",
    validate=validate_images_pinned,
    severity=Severity.HIGH,
    remediation_steps="Set the image to `<repository>:<version>` (or `@sha256:...`).",
)


# --- Rule: container resources ---------------------------------------------------------------

REQUIRED_RESOURCES = (
    ("requests", "cpu"),
    ("requests", "memory"),
    ("limits", "cpu"),
    ("limits", "memory"),
)


def missing_resources(container: Mapping[str, Any]) -> list[str]:
    """`requests.cpu`-style names of the requests and limits a container does not set."""
    resources = _map(container.get("resources"))
    return [
        f"{section}.{resource}"
        for section, resource in REQUIRED_RESOURCES
        if _at(resources, section, resource) in (None, "")
    ]


def validate_container_resources(args: ResourceValidationArgs, report: ReportViolation) -> None:
    pod = pod_template(args.resource_type, args.props)
    if pod is None:
        return
    # Ephemeral (debug) containers cannot declare resources.
    for where, container in containers(pod, ephemeral=False):
        missing = missing_resources(container)
        if missing:
            report(
                f"{_label(container, where)} sets no {', '.join(missing)}; give it "
                "requests and limits for cpu and memory (components/sizing.py).",
                None,
            )


container_resources = ResourceValidationPolicy(
    name="container-resources",
    description="Every container requests and limits both cpu and memory.",
    validate=validate_container_resources,
    severity=Severity.MEDIUM,
    remediation_steps="Add a row to components/sizing.py and set `resources` from it.",
)


# --- Rule: no opt-out of injection in meshed namespaces --------------------------------------

INJECT_ANNOTATION = "linkerd.io/inject"
# Namespaces the stack meshes whose Namespace object does not say so: viz's pods carry the
# inject annotation themselves. The others are also detected from their Namespace objects.
DEFAULT_MESHED_NAMESPACES = ("emojivoto", "tracing", "grafana", "linkerd-viz")


def meshed_namespaces(resources: Sequence[Any], extra: Sequence[str]) -> set[str]:
    """Namespaces whose Namespace (or NamespacePatch) asks for injection, plus `extra`."""
    found = set(extra)
    for res in resources:
        if kind_of(res.resource_type) not in ("Namespace", "NamespacePatch"):
            continue
        try:
            metadata = _map(res.props.get("metadata"))
            if _map(metadata.get("annotations")).get(INJECT_ANNOTATION) == "enabled":
                found.add(str(metadata.get("name")))
        except UnknownValueError:
            continue  # a name unknown in preview; `pulumi up` runs the rule with it known
    return found


def injection_opt_out(resource_type: str, props: Mapping[str, Any]) -> bool:
    """True when a workload's pod template turns injection off."""
    pod = pod_template(resource_type, props)
    if pod is None:
        return False
    annotations = _map(_at(pod, "metadata", "annotations"))
    return str(annotations.get(INJECT_ANNOTATION, "")).lower() == "disabled"


def validate_no_injection_opt_out(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    extra = [str(n) for n in _seq(config.get("meshedNamespaces", DEFAULT_MESHED_NAMESPACES))]
    meshed = meshed_namespaces(args.resources, extra)
    for res in args.resources:
        try:
            namespace = _at(res.props, "metadata", "namespace") or "default"
            if namespace in meshed and injection_opt_out(res.resource_type, res.props):
                report(
                    f"{kind_of(res.resource_type)} {res.name!r} in meshed namespace "
                    f"{namespace!r} sets `{INJECT_ANNOTATION}: disabled` on its pods; remove it "
                    "(unmeshed pods bypass mTLS, policy and the golden metrics) or move the "
                    "workload to an unmeshed namespace.",
                    res.urn,
                )
        except UnknownValueError:
            continue


no_injection_opt_out = StackValidationPolicy(
    name="no-injection-opt-out",
    description=(
        "Workloads in meshed namespaces keep the Linkerd proxy: no pod-level "
        "`linkerd.io/inject: disabled`."
    ),
    validate=validate_no_injection_opt_out,
    severity=Severity.HIGH,
    config_schema=PolicyConfigSchema(
        properties={
            "meshedNamespaces": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(DEFAULT_MESHED_NAMESPACES),
                "description": (
                    "Meshed namespaces besides those whose Namespace object carries "
                    "`linkerd.io/inject: enabled` (detected automatically)."
                ),
            }
        }
    ),
)


# --- Rule: Helm chart versions pinned --------------------------------------------------------

HELM_CHART_TYPES = frozenset(
    {
        "kubernetes:helm.sh/v4:Chart",
        "kubernetes:helm.sh/v3:Chart",
        "kubernetes:helm.sh/v3:Release",
    }
)
# SemVer 2.0.0 (helm requires it of chart versions), with the `v` prefix Helm tolerates.
_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)
_LOCAL_CHART = ("./", "../", "/", "file://")


def chart_version_problem(version: Any) -> str | None:
    """Why `version` does not pin one chart release, or None when it is an exact SemVer."""
    if not isinstance(version, str) or not version.strip():
        return "has no version, so every render takes the newest release"
    if not _SEMVER.match(version.strip()):
        return f"has version {version!r}, which is a range or not SemVer"
    return None


def validate_chart_version(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in HELM_CHART_TYPES:
        return
    chart = args.props.get("chart")
    if not chart:
        # The engine shows a v4 Chart as the provider registers it (a component with no
        # inputs), and the Python v3 Chart registers none either: nothing to check here; the
        # unit tests check the recorded program's charts instead.
        args.not_applicable(f"{args.resource_type} carries no chart inputs in this run")
    if str(chart).startswith(_LOCAL_CHART):
        return  # a chart folder in the repository is pinned by the commit
    problem = chart_version_problem(args.props.get("version"))
    if problem:
        report(
            f"chart {chart!r} {problem}; pin the exact version in components/versions.py.",
            None,
        )


chart_version_pinned = ResourceValidationPolicy(
    name="helm-chart-version-pinned",
    description="Helm charts and releases pin one exact SemVer chart version.",
    validate=validate_chart_version,
    severity=Severity.HIGH,
    remediation_steps="Set `version` to the exact chart version, e.g. `2026.8.3`.",
)


# --- Rule: no secret material in ConfigMaps --------------------------------------------------

# Key names that say "I am a credential" (words split at `_`, `-`, `.` and camelCase).
_SECRET_KEY_LAST_WORDS = frozenset(
    {"password", "passwd", "pwd", "passphrase", "token", "apikey", "credential", "credentials"}
)
_SECRET_KEY_LAST_PAIRS = frozenset(
    {
        ("api", "key"),
        ("private", "key"),
        ("secret", "key"),
        ("access", "key"),
        ("client", "secret"),
        ("webhook", "secret"),
    }
)
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

# Values that are credentials whatever their key.
_SECRET_VALUES = (
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("a Slack token", re.compile(r"\bxox[abeprs]-[A-Za-z0-9-]{10,}")),
    ("a Grafana service account token", re.compile(r"\bglsa_[A-Za-z0-9_]{20,}")),
    (
        "a JSON Web Token",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ),
    ("a password in a URL", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")),
)
# `key: value` / `"key" = "value"` pairs inside config files held in a ConfigMap; the key is
# then judged like a ConfigMap key. A value followed by `(` is a call (`sys.env("X")`).
_ASSIGNMENT = re.compile(
    r"""["']?(?P<key>[A-Za-z0-9_.-]+)["']?[ \t]*[:=][ \t]*"""
    r"""["']?(?P<value>[^"'\s,}\]#()]*)(?P<call>\()?"""
)
# Values that point at a secret rather than hold one: env and file references, templates,
# nested objects, empty or masked values.
_PLACEHOLDER = re.compile(r"^(\$|<|\{|\[|%|\*+$|null$|none$|~$|true$|false$)", re.I)


def secret_key(key: str) -> bool:
    """True when a ConfigMap key's name says it holds a credential."""
    words = [w.lower() for w in _WORDS.findall(key)]
    if not words:
        return False
    return words[-1] in _SECRET_KEY_LAST_WORDS or tuple(words[-2:]) in _SECRET_KEY_LAST_PAIRS


def secret_findings(key: str, value: Any) -> list[str]:
    """What in one ConfigMap entry looks like secret material (empty when nothing does)."""
    text = value if isinstance(value, str) else ""
    found = []
    if text.strip() and secret_key(key):
        found.append(f"key {key!r} is named like a credential")
    for what, pattern in _SECRET_VALUES:
        if pattern.search(text):
            found.append(f"key {key!r} holds {what}")
    for match in _ASSIGNMENT.finditer(text):
        value_, call = match["value"], match["call"]
        if secret_key(match["key"]) and value_ and not call and not _PLACEHOLDER.match(value_):
            found.append(f"key {key!r} sets {match['key']!r} to a literal value")
            break
    return found


def _decoded(value: Any) -> str:
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


def validate_no_configmap_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if kind_of(args.resource_type) not in ("ConfigMap", "ConfigMapPatch"):
        return
    entries = [(k, v) for k, v in _map(args.props.get("data")).items()]
    entries += [(k, _decoded(v)) for k, v in _map(args.props.get("binaryData")).items()]
    for key, value in entries:
        for finding in secret_findings(str(key), value):
            report(
                f"{finding}; keep credentials in a Secret (or a Pulumi secret that becomes "
                "one) and reference it with `secretKeyRef`/`envFrom.secretRef`.",
                None,
            )


no_configmap_secrets = ResourceValidationPolicy(
    name="no-secrets-in-configmaps",
    description="ConfigMaps hold no private keys, passwords or tokens.",
    validate=validate_no_configmap_secrets,
    severity=Severity.CRITICAL,
)


# --- Rule: no LoadBalancer Services unless allowed -------------------------------------------


def validate_no_load_balancer(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if kind_of(args.resource_type) not in ("Service", "ServicePatch"):
        return
    if _at(args.props, "spec", "type") != "LoadBalancer":
        return
    if args.get_config().get("allowLoadBalancer", False) is True:
        return
    report(
        "Service of type LoadBalancer: it asks the cloud for a public address, and a kind or "
        "dev cluster has none to give. Use `exposure.mode: port-forward`, `nodePort` or "
        '`ingress`, or run the pack with the config `{"no-load-balancer-services": '
        '{"allowLoadBalancer": true}}` where load balancers are wanted.',
        None,
    )


no_load_balancer = ResourceValidationPolicy(
    name="no-load-balancer-services",
    description="No Services of type LoadBalancer unless the pack's config allows them.",
    validate=validate_no_load_balancer,
    severity=Severity.MEDIUM,
    config_schema=PolicyConfigSchema(
        properties={
            "allowLoadBalancer": {
                "type": "boolean",
                "default": False,
                "description": "Allow Services of type LoadBalancer (stacks on a cloud).",
            }
        }
    ),
)


# --- The pack --------------------------------------------------------------------------------

RESOURCE_POLICIES: list[ResourceValidationPolicy] = [
    images_pinned,
    container_resources,
    chart_version_pinned,
    no_configmap_secrets,
    no_load_balancer,
]
STACK_POLICIES: list[StackValidationPolicy] = [no_injection_opt_out]
ALL: list[ResourceValidationPolicy | StackValidationPolicy] = [
    *RESOURCE_POLICIES,
    *STACK_POLICIES,
]
