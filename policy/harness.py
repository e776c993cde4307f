"""Run the pack's policies outside the Pulumi CLI, the way the CrossGuard analyzer runs them.

Used by policy/tests (the recorded program, hand-broken resources) and by the chart contract
test (the objects the pinned charts render). As in pulumi-policy's own tests, a policy is
called directly: `policy.validate(args, report_violation)` with hand-built args whose props
went through the analyzer's own deserialization (secrets unwrapped) and unknown-checking proxy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import unknown_checking_proxy

OPTS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


@dataclass(frozen=True)
class Subject:
    """One resource to validate: its type token, name and wire-format properties."""

    type: str
    name: str
    props: Mapping[str, Any]

    @property
    def urn(self) -> str:
        return f"urn:pulumi:test::meshstack::{self.type}::{self.name}"


@dataclass(frozen=True)
class Violation:
    policy: str
    urn: str | None
    message: str

    def __str__(self) -> str:
        return f"[{self.policy}] {self.urn}: {self.message}"


def bag(props: Mapping[str, Any]) -> Any:
    """Props as the analyzer hands them: wire JSON, secrets unwrapped, unknown-checking proxy."""
    wire = json.loads(json.dumps({k: v for k, v in props.items() if not k.startswith("__")}))
    return unknown_checking_proxy(deserialize_properties(wire))


def resource_args(subject: Subject, config: Mapping[str, Any] | None) -> ResourceValidationArgs:
    return ResourceValidationArgs(
        subject.type, bag(subject.props), subject.urn, subject.name, OPTS, None, config
    )


def check_resource(
    policy: ResourceValidationPolicy,
    subject: Subject,
    config: Mapping[str, Any] | None = None,
) -> list[str]:
    """The violation messages `policy` reports for one resource (raises when not applicable)."""
    found: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    policy.validate(resource_args(subject, config), report)
    return found


def check_stack(
    policy: StackValidationPolicy,
    subjects: Iterable[Subject],
    config: Mapping[str, Any] | None = None,
) -> list[tuple[str, str | None]]:
    """The (message, urn) violations `policy` reports for a whole stack."""
    found: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append((message, urn))

    resources = [
        PolicyResource(s.type, bag(s.props), s.urn, s.name, OPTS, None, None, [], {})
        for s in subjects
    ]
    policy.validate(StackValidationArgs(resources, config), report)
    return found


def check_all(
    policies: Iterable[ResourceValidationPolicy | StackValidationPolicy],
    subjects: list[Subject],
    pack_config: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Violation]:
    """Every violation of every policy over `subjects`, with per-policy config as in a
    `--policy-pack-config` file ({policy name: {property: value}})."""
    out: list[Violation] = []
    for policy in policies:
        config = dict((pack_config or {}).get(policy.name, {}))
        if isinstance(policy, StackValidationPolicy):
            out += [Violation(policy.name, u, m) for m, u in check_stack(policy, subjects, config)]
            continue
        for subject in subjects:
            try:
                messages = check_resource(policy, subject, config)
            except _NotApplicableError:
                continue
            out += [Violation(policy.name, subject.urn, m) for m in messages]
    return out
