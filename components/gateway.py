"""Envoy Gateway: the controller, its certificates, and a GatewayClass whose Envoy pods are meshed.

Installed with `exposure.mode: gateway` and `exposure.installEnvoyGateway`; exposure's Gateway and
HTTPRoutes then attach to the GatewayClass made here (components/exposure.py).

CRDs: none from this chart (`crds.enabled: false`). The Gateway API CRDs and Envoy Gateway's own
come from the mesh's gateway-crds-helm release (components/mesh.py), so each CRD has one owner
and outlives the controller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import common, sizing, versions
from components import exposure as exp

# The release name Envoy Gateway's docs install with (`helm install eg`); the chart names its
# certificate Job's objects after it.
RELEASE = "eg"
FULLNAME = f"{RELEASE}-{versions.ENVOY_GATEWAY.chart}"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
# The EnvoyProxy every Gateway of the class gets its data-plane settings from.
ENVOY_PROXY = "meshstack-proxy"


def chart_values(profile: str, cluster_domain: str) -> dict[str, Any]:
    """Values for gateway-helm.

    - `crds.enabled: false`: gateway-crds-helm owns every CRD (module docstring); the chart's
      subchart would install a second, experimental-channel copy of the Gateway API.
    - `topologyInjector.enabled: false`: its MutatingWebhookConfiguration is a Helm hook, which
      Pulumi's v4 Chart drops, and it only adds zone labels for topology-aware routing. Off,
      the certificate Job is also told not to patch it (`--disable-topology-injector`).
    """
    return {
        "crds": {"enabled": False},
        "topologyInjector": {"enabled": False},
        "kubernetesClusterDomain": cluster_domain,
        "deployment": {"envoyGateway": {"resources": sizing.size(profile, "envoy-gateway").k8s()}},
    }


def certgen_objects(profile: str, namespace: str, cluster_domain: str) -> list[dict[str, Any]]:
    """The chart's `certgen` Job and its RBAC (`templates/certgen.yaml`, `certgen-rbac.yaml`),
    as plain objects.

    The chart ships them as `pre-install, pre-upgrade` hooks, which the v4 Chart never runs, so
    the controller would wait forever for its `envoy-gateway` Secret. The Job writes the
    control plane's Secrets (`envoy-gateway`, `envoy`, `envoy-rate-limit`, `envoy-oidc-hmac`)
    and leaves existing ones alone, so it is safe to run again. Not meshed: its
    namespace has no injection, and a meshed Job would never complete.
    """
    meta = {"name": f"{FULLNAME}-certgen", "namespace": namespace, "labels": {"app": "certgen"}}
    security = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsGroup": 65532,
        "runAsUser": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "update"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": meta["name"],
            },
            "subjects": [{"kind": "ServiceAccount", "name": meta["name"], "namespace": namespace}],
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta,
            "spec": {
                "backoffLimit": 1,
                "completions": 1,
                "parallelism": 1,
                # No ttlSecondsAfterFinished (the chart's is 30s): a Job that deletes itself
                # would be recreated by every `pulumi up --refresh`.
                "template": {
                    "metadata": {"labels": {"app": "certgen"}},
                    "spec": {
                        "restartPolicy": "Never",
                        "serviceAccountName": meta["name"],
                        "containers": [
                            {
                                "name": "envoy-gateway-certgen",
                                "image": versions.ENVOY_GATEWAY_IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["envoy-gateway", "certgen"],
                                "args": ["--disable-topology-injector"],
                                "env": [
                                    {
                                        "name": "ENVOY_GATEWAY_NAMESPACE",
                                        "valueFrom": {
                                            "fieldRef": {
                                                "apiVersion": "v1",
                                                "fieldPath": "metadata.namespace",
                                            }
                                        },
                                    },
                                    {"name": "KUBERNETES_CLUSTER_DOMAIN", "value": cluster_domain},
                                ],
                                "resources": sizing.size(profile, "envoy-gateway-certgen").k8s(),
                                "securityContext": security,
                            }
                        ],
                    },
                },
            },
        },
    ]


# Envoy Gateway's own uid for Envoy (infrastructure/kubernetes/proxy/resource.go).
ENVOY_UID = 65532


def envoy_security_context() -> dict[str, Any]:
    return {
        **common.restricted_container_security(),
        "readOnlyRootFilesystem": False,
        "runAsUser": ENVOY_UID,
        "runAsGroup": ENVOY_UID,
    }


# dev: the node port of each Gateway listener port (kind.yaml maps them to the host's).
NODE_PORTS = {exp.HTTP_PORT: 30800, exp.HTTPS_PORT: 30443}


# `samplingFraction` is numerator/denominator: a percentage to two decimals.
SAMPLING_DENOMINATOR = 10_000


def edge_tracing(
    collector_service: str, collector_namespace: str, collector_port: int, percent: float
) -> dict[str, Any]:
    """`telemetry.tracing` of the EnvoyProxy: Envoy starts a trace for `percent` of the
    requests it receives and sends its spans over OTLP gRPC to the collector's Service (through
    its Linkerd proxy, over mTLS). Envoy propagates W3C `traceparent`, which Linkerd's proxies
    continue. Pure."""
    return {
        "samplingFraction": {
            "numerator": round(percent * SAMPLING_DENOMINATOR / 100),
            "denominator": SAMPLING_DENOMINATOR,
        },
        "provider": {
            "type": "OpenTelemetry",
            "backendRefs": [
                {
                    "name": collector_service,
                    "namespace": collector_namespace,
                    "port": collector_port,
                }
            ],
        },
    }


# The grant in the collector's namespace that lets the EnvoyProxy name its Service.
TRACES_GRANT = "envoy-gateway-traces"


def trace_reference_grant(tracing: dict[str, Any], gateway_namespace: str) -> dict[str, Any]:
    """The ReferenceGrant the edge's span export needs: the EnvoyProxy (in the gateway's
    namespace) names the collector's Service in another namespace, which Gateway API admits
    only with the referent namespace's consent (the EnvoyProxy CRD's `backendRefs.namespace`).
    Pure."""
    (ref,) = tracing["provider"]["backendRefs"]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "ReferenceGrant",
        "metadata": {
            "name": TRACES_GRANT,
            "namespace": ref["namespace"],
            "labels": dict(common.MANAGED_BY),
        },
        "spec": {
            "from": [
                {
                    "group": "gateway.envoyproxy.io",
                    "kind": "EnvoyProxy",
                    "namespace": gateway_namespace,
                }
            ],
            "to": [{"group": "", "kind": "Service", "name": ref["name"]}],
        },
    }


def envoy_proxy_spec(
    profile: str, tls: bool = False, tracing: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The EnvoyProxy the GatewayClass points at: what makes Envoy a well-behaved mesh member.

    - `linkerd.io/inject: enabled` on the Envoy pods: Linkerd gives them an identity (their
      ServiceAccount in Envoy Gateway's namespace), which the UIs' policies admit;
    - `routingType: Service`: Envoy dials the Service's ClusterIP, not pod IPs (Envoy Gateway's
      default), so Linkerd sees a Service and applies its policy and load balancing (Linkerd
      "Ingress" docs). Headless Services cannot be routed to this way; the UIs have none.
    - dev: a NodePort Service on fixed ports (kind has no load balancer); prod: two Envoy
      replicas behind a LoadBalancer (Envoy Gateway's default type). `tls`: the Gateway
      listens on 443 as well as 80;
    - `tracing` (`edge_tracing`): the edge starts traces for real user requests.
    """
    kubernetes: dict[str, Any] = {
        "envoyDeployment": {
            "pod": {
                "annotations": {"linkerd.io/inject": "enabled"},
                # Written out rather than left to Envoy Gateway's defaults, so what the
                # namespace's `restricted` level admits is visible here. Envoy writes its
                # admin socket and logs to the root filesystem, so that stays writable
                # (as upstream's own default, proxy/resource.go).
                "securityContext": {
                    "runAsNonRoot": True,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            },
            "container": {"securityContext": envoy_security_context()},
        },
    }
    if profile == "prod":
        kubernetes["envoyDeployment"]["replicas"] = 2
    else:
        # Fixed node ports, so kind.yaml can map them to the host's 80 and 443: the URLs the
        # stack exports then work as they are on a laptop (`exposure.domain: localhost`). The
        # Service Envoy Gateway makes has one port per listener port; the patch merges into
        # those by `port` and may only name ports the Gateway really listens on.
        listening = (exp.HTTP_PORT, exp.HTTPS_PORT) if tls else (exp.HTTP_PORT,)
        kubernetes["envoyService"] = {
            "type": "NodePort",
            "patch": {
                "type": "StrategicMerge",
                "value": {
                    "spec": {
                        "ports": [
                            {"port": port, "nodePort": NODE_PORTS[port]} for port in listening
                        ]
                    }
                },
            },
        }
    spec: dict[str, Any] = {
        "routingType": "Service",
        "provider": {"type": "Kubernetes", "kubernetes": kubernetes},
    }
    if tracing is not None:
        spec["telemetry"] = {"tracing": tracing}
    return spec


def gateway_class_spec(namespace: str) -> dict[str, Any]:
    return {
        "controllerName": CONTROLLER_NAME,
        "parametersRef": {
            "group": "gateway.envoyproxy.io",
            "kind": "EnvoyProxy",
            "name": ENVOY_PROXY,
            "namespace": namespace,
        },
    }


@dataclass
class EnvoyGatewayArgs:
    gateway_class: str
    """The GatewayClass to create (`exposure.gatewayClass`)."""
    control_plane: pulumi.Resource
    """Linkerd's control plane: the Gateway API and Envoy Gateway CRDs are installed before it,
    and its injector must run before Envoy pods start, or they run without a proxy."""
    namespace: str = "envoy-gateway-system"
    """Default: envoy-gateway-system (Envoy Gateway's docs). The controller and, Envoy Gateway's
    default deploy type, every Gateway's Envoy pods run here."""
    profile: str = "dev"
    """Default: dev (one Envoy replica, NodePort); prod: two replicas, LoadBalancer."""
    cluster_domain: str = "cluster.local"
    """Default: cluster.local; the names in the control plane's certificates use it."""
    tls: bool = False
    """The Gateway's listeners serve HTTPS on 443 (and redirect from 80). Default: false, HTTP
    on 80 only."""
    cni: bool = False
    """Linkerd's CNI plugin is installed (`linkerd.cni`): the meshed Envoy pods then need
    nothing from the host and the namespace enforces `restricted`. Default: false (`privileged`,
    as linkerd-init needs NET_ADMIN, with `warn`/`audit` at `restricted`)."""
    tracing: dict[str, Any] | None = None
    """`edge_tracing(...)`: Envoy's spans and sampling. Default: none, Envoy traces nothing."""
    tracing_namespace: pulumi.Input[str] | None = None
    """With `tracing`: the collector's namespace as the tracing component outputs it, so the
    ReferenceGrant for the span export is created once it exists. Default: the name in
    `tracing` (a namespace that already exists)."""


class EnvoyGateway(pulumi.ComponentResource):
    """Envoy Gateway v1.8.3 and a GatewayClass whose data plane is meshed.

    Children: the namespace (not meshed: the controller and the certificate Job stay out of the
    mesh; the EnvoyProxy annotates the Envoy pods alone), the certificate Job and its RBAC, the
    `gateway-helm` chart (no CRDs), the EnvoyProxy and the GatewayClass.

    Outputs: `namespace`, `gateway_class` (its name, once created).
    """

    namespace: pulumi.Output[str]
    gateway_class: pulumi.Output[str]

    def __init__(
        self, name: str, args: EnvoyGatewayArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("meshstack:gateway:EnvoyGateway", name, None, opts)
        ns = common.namespace(
            args.namespace,
            f"{name}-namespace",
            self,
            labels=common.meshed_pod_security(args.cni),
        )

        account, role, binding, job = certgen_objects(
            args.profile, args.namespace, args.cluster_domain
        )
        # These name the namespace as a plain string, not the output, so they wait for it here.
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        rbac = [
            k8s.core.v1.ServiceAccount(
                f"{name}-certgen-account", metadata=account["metadata"], opts=in_ns
            ),
            k8s.rbac.v1.Role(
                f"{name}-certgen-role", metadata=role["metadata"], rules=role["rules"], opts=in_ns
            ),
            k8s.rbac.v1.RoleBinding(
                f"{name}-certgen-binding",
                metadata=binding["metadata"],
                role_ref=binding["roleRef"],
                subjects=binding["subjects"],
                opts=in_ns,
            ),
        ]
        certgen = k8s.batch.v1.Job(
            f"{name}-certgen",
            metadata=job["metadata"],
            spec=job["spec"],
            # Its pod runs as the account the Role is bound to.
            opts=pulumi.ResourceOptions(parent=self, depends_on=rbac),
        )
        chart = common.chart(
            f"{name}-chart",
            versions.ENVOY_GATEWAY,
            RELEASE,
            ns.metadata.name,
            chart_values(args.profile, args.cluster_domain),
            self,
            # The controller mounts the Job's Secret, and reads the CRDs installed before the
            # control plane.
            depends_on=[certgen, args.control_plane],
        )
        if args.tracing is not None:
            grant = trace_reference_grant(args.tracing, args.namespace)
            k8s.apiextensions.CustomResource(
                f"{name}-traces-grant",
                api_version=grant["apiVersion"],
                kind=grant["kind"],
                metadata={
                    **grant["metadata"],
                    "namespace": args.tracing_namespace or grant["metadata"]["namespace"],
                },
                spec=grant["spec"],
                # Its kind is one of the Gateway API CRDs installed before the control plane.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[args.control_plane]),
            )
        proxy = k8s.apiextensions.CustomResource(
            f"{name}-envoy-proxy",
            api_version="gateway.envoyproxy.io/v1alpha1",
            kind="EnvoyProxy",
            metadata={"name": ENVOY_PROXY, "namespace": ns.metadata.name},
            spec=envoy_proxy_spec(args.profile, args.tls, args.tracing),
            # Its kind is one of the CRDs installed before the control plane.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.control_plane]),
        )
        gateway_class = k8s.apiextensions.CustomResource(
            f"{name}-gateway-class",
            api_version="gateway.networking.k8s.io/v1",
            kind="GatewayClass",
            metadata={"name": args.gateway_class, "labels": dict(common.MANAGED_BY)},
            spec=gateway_class_spec(args.namespace),
            # Accepted once the controller runs and finds its parameters.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[chart, proxy]),
        )

        self.namespace = ns.metadata.name
        self.gateway_class = gateway_class.id.apply(lambda _: args.gateway_class)
        self.register_outputs({"namespace": self.namespace, "gateway_class": self.gateway_class})
