"""A team's project on a meshstack platform: a meshed, traced workload in an onboarded namespace.

It reads the platform's documented outputs (README "Outputs") through a StackReference and
relies on what onboarding gives a namespace: proxy injection, a default-deny inbound policy, and
the collector's address. The workload is `telemetrygen`, which sends a trace a second to the
collector's OTLP gRPC endpoint; it listens on nothing, so default deny costs it nothing, and its
spans show up in Jaeger under the service name `consumer-demo`.

Deploy from this folder (the platform stack must be up, with at least one onboarded namespace),
in the backend and with the passphrase `make up` used, which the StackReference needs to find the
platform's stack and read its outputs (the Makefile's defaults, unless you set your own):

    python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
    export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$(cd ../.. && pwd)/.pulumi-state}"
    export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-meshstack-local}"
    pulumi stack init dev && pulumi up
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

# One constant per pinned image; the telemetrygen release matches the platform's collector.
TELEMETRYGEN_IMAGE = "ghcr.io/open-telemetry/opentelemetry-collector-contrib/telemetrygen:v0.158.0"
SERVICE_NAME = "consumer-demo"

config = pulumi.Config()
platform = pulumi.StackReference(config.get("platformStack", "organization/meshstack/dev"))
wanted = config.get("namespace", "")

team_namespaces = platform.require_output("teamNamespaces")
tracing = platform.require_output("tracing")


def pick_namespace(namespaces: list[str]) -> str:
    """The namespace to deploy into, with an error that says how to fix a wrong choice."""
    if not namespaces:
        raise pulumi.RunError(
            "the platform stack onboards no team namespace; add one there with "
            '`pulumi config set --path "onboarding.namespaces[0].name" my-team` and `pulumi up`'
        )
    if wanted and wanted not in namespaces:
        raise pulumi.RunError(
            f"meshstack-consumer:namespace: got {wanted!r}; the platform onboards "
            f"{', '.join(namespaces)}"
        )
    return wanted or namespaces[0]


def otlp_endpoint(endpoints: dict[str, str]) -> str:
    if not endpoints.get("otlpGrpc"):
        raise pulumi.RunError(
            "the platform stack has tracing turned off (output `tracing` is empty); "
            "set `enableTracing: true` there"
        )
    return endpoints["otlpGrpc"]


namespace = team_namespaces.apply(pick_namespace)
endpoint = tracing.apply(otlp_endpoint)
labels = {"app.kubernetes.io/name": SERVICE_NAME, "app.kubernetes.io/part-of": "meshstack-consumer"}

deployment = k8s.apps.v1.Deployment(
    "consumer-demo",
    metadata=k8s.meta.v1.ObjectMetaArgs(name=SERVICE_NAME, namespace=namespace, labels=labels),
    spec=k8s.apps.v1.DeploymentSpecArgs(
        replicas=1,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
        template=k8s.core.v1.PodTemplateSpecArgs(
            # No inject annotation: the onboarded namespace meshes every pod.
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
            spec=k8s.core.v1.PodSpecArgs(
                automount_service_account_token=False,
                security_context=k8s.core.v1.PodSecurityContextArgs(
                    run_as_non_root=True,
                    run_as_user=10001,
                    seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                ),
                containers=[
                    k8s.core.v1.ContainerArgs(
                        name="telemetrygen",
                        image=TELEMETRYGEN_IMAGE,
                        args=[
                            "traces",
                            endpoint.apply(lambda e: f"--otlp-endpoint={e}"),
                            # Plain gRPC to the local proxy, which upgrades it to mTLS.
                            "--otlp-insecure",
                            f"--service={SERVICE_NAME}",
                            "--rate=1",
                            "--duration=87600h",
                        ],
                        resources=k8s.core.v1.ResourceRequirementsArgs(
                            requests={"cpu": "5m", "memory": "16Mi"},
                            limits={"cpu": "50m", "memory": "64Mi"},
                        ),
                        security_context=k8s.core.v1.SecurityContextArgs(
                            allow_privilege_escalation=False,
                            read_only_root_filesystem=True,
                            capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                        ),
                    )
                ],
            ),
        ),
    ),
)

pulumi.export("namespace", namespace)
pulumi.export("deployment", deployment.metadata.name)
