"""Small pieces every component shares: namespaces, labels, secure defaults, Helm charts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.versions import ChartRef

MANAGED_BY = {"app.kubernetes.io/part-of": "meshstack", "app.kubernetes.io/managed-by": "pulumi"}

# Linkerd's proxy-init needs NET_ADMIN/NET_RAW without the CNI plugin, which only the
# `privileged` Pod Security level allows; meshed namespaces carry it, others stay restricted.
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_PRIVILEGED = {PSA_ENFORCE: "privileged"}
PSA_RESTRICTED = {PSA_ENFORCE: "restricted"}
# Without the CNI plugin a meshed namespace must admit linkerd-init, but still reports (API
# warnings, audit annotations) every pod that `restricted` would refuse once the plugin is on.
PSA_MESHED_WITHOUT_CNI = {
    **PSA_PRIVILEGED,
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


def meshed_pod_security(cni: bool) -> dict[str, str]:
    """The PSA labels of a meshed namespace whose pods need nothing from the host."""
    return dict(PSA_RESTRICTED if cni else PSA_MESHED_WITHOUT_CNI)


INJECT_ENABLED = {"linkerd.io/inject": "enabled"}
# Linkerd's namespace-level default inbound policy: `deny` means a meshed pod accepts nothing
# (kubelet probes aside, which Linkerd authorizes itself) that a policy object does not allow.
DEFAULT_DENY = {"config.linkerd.io/default-inbound-policy": "deny"}


def namespace(
    name: str,
    resource_name: str,
    parent: pulumi.Resource,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    depends_on: list[pulumi.Resource] | None = None,
    retain_on_delete: bool = False,
) -> k8s.core.v1.Namespace:
    """A namespace owned by the stack, labelled as part of the platform.

    `retain_on_delete` keeps the namespace on `pulumi destroy`: deleting a namespace deletes
    every PersistentVolumeClaim in it, retained or not, so a namespace holding data is kept.
    """
    return k8s.core.v1.Namespace(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name,
            labels={**MANAGED_BY, **(labels or {})},
            annotations=dict(annotations or {}) or None,
        ),
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=depends_on or [], retain_on_delete=retain_on_delete
        ),
    )


def meshed_namespace_metadata(
    default_deny: bool, cni: bool = False
) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations of a namespace whose pods get a Linkerd proxy."""
    annotations = {**INJECT_ENABLED, **(DEFAULT_DENY if default_deny else {})}
    return meshed_pod_security(cni), annotations


def meshed_namespace(
    name: str,
    resource_name: str,
    parent: pulumi.Resource,
    control_plane: pulumi.Resource,
    default_deny: bool = False,
    retain_on_delete: bool = False,
    extensions: Sequence[pulumi.Resource] = (),
    cni: bool = False,
) -> k8s.core.v1.Namespace:
    """A namespace whose pods are meshed, created only once the control plane is ready.

    The proxy injector's failure policy is `Ignore` in dev: a pod created before the injector
    answers starts without a proxy, silently. Everything that takes its namespace name from
    this resource waits for the control plane too, and for `extensions`: mesh extensions whose
    own injectors must see the pods too (viz's tap-injector enables tap only on pods created
    after it answers; earlier ones stay untappable until restarted). `cni`: PSA `restricted`
    (`meshed_pod_security`).
    """
    labels, annotations = meshed_namespace_metadata(default_deny, cni)
    return namespace(
        name,
        resource_name,
        parent,
        labels,
        annotations,
        depends_on=[control_plane, *extensions],
        retain_on_delete=retain_on_delete,
    )


def chart_source(ref: ChartRef) -> tuple[str, str | None]:
    """(chart, repository URL or None): how Helm is told where `ref` comes from.

    An OCI registry has no index to look a chart up in: Helm takes the full reference as the
    chart and no repository (with one, it fetches `<repo>/index.yaml`, which a registry lacks).
    """
    if ref.repo.startswith("oci://"):
        return f"{ref.repo.rstrip('/')}/{ref.chart}", None
    return ref.chart, ref.repo


def retain_children(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
    """A transform that keeps a resource, and so each object a chart renders, on destroy.

    `retain_on_delete` on a v4 Chart applies to the component alone: the provider registers the
    rendered objects with only `parent` (and, for `helm.sh/resource-policy: keep`, retention;
    pulumi-kubernetes provider/pkg/provider/helm/v4/chart.go `preregister`), and the option is
    not inherited. The engine runs a component's transforms on every child registered under it,
    the provider's too (pulumi/pulumi pkg/resource/deploy/source_eval.go, pending transforms).
    """
    opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(retain_on_delete=True))
    return pulumi.ResourceTransformResult(args.props, opts)


def chart(
    resource_name: str,
    ref: ChartRef,
    release: str,
    namespace_name: pulumi.Input[str] | None,
    values: Mapping[str, Any],
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource] | None = None,
    skip_crds: bool = False,
    retain_on_delete: bool = False,
    aliases: list[pulumi.Alias] | None = None,
    transforms: list[pulumi.ResourceTransform] | None = None,
) -> k8s.helm.v4.Chart:
    """An upstream chart at its pinned version, rendered by Pulumi (no Helm release).

    The release name is fixed (not the resource name) because Service names, and so the
    addresses other components are given, derive from it. `retain_on_delete` keeps every
    object the chart renders on destroy (`retain_children`). `namespace_name` None: the chart
    renders cluster-scoped objects only. `transforms` run on every object the chart renders, for
    what its values cannot set.
    """
    name, repo = chart_source(ref)
    every = [*([retain_children] if retain_on_delete else []), *(transforms or [])]
    return k8s.helm.v4.Chart(
        resource_name,
        chart=name,
        version=ref.version,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=repo) if repo else None,
        name=release,
        namespace=namespace_name,
        values=dict(values),
        skip_crds=skip_crds,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=depends_on or [],
            retain_on_delete=retain_on_delete or None,
            transforms=every or None,
            aliases=aliases,
        ),
    )


def restricted_container_security() -> dict[str, Any]:
    """The `restricted` Pod Security profile for a container, as a values/spec dict."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def svc_host(service: str, namespace_name: str, cluster_domain: str) -> str:
    """The fully qualified in-cluster DNS name of a Service."""
    return f"{service}.{namespace_name}.svc.{cluster_domain}"
