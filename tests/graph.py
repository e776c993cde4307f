"""Run the real `__main__.py` under Pulumi mocks and record the resource graph.

What is recorded for every registration: type, name, URN, custom or component, parent,
dependencies (explicit `depends_on` plus those flowing from inputs), the raw inputs with
their secret markers, and the resource options that matter (protect, retainOnDelete,
ignoreChanges). Stack outputs are recorded with their secret markers too.

The mocks behave like a tiny engine with state: the pulumi-tls and pulumi-random resources
produce real keys, certificates and passwords, and the same inputs give the same outputs
across runs, as state does between two `pulumi up`s.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import runpy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import json_format
from pulumi.runtime import mocks, rpc
from pulumi.runtime import settings as pulumi_settings

from components.config import SECRET_KEYS

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "meshstack"
SECRET_SIG = rpc._special_secret_sig
SIG_KEY = rpc._special_sig_key
# The keys a user sets with `--secret`: the program's own list, so a new secret key is marked
# secret in the tests' config as soon as the program demands it.
SECRET_CONFIG_KEYS = SECRET_KEYS
# The stable "now" of the mock certificate authority, so two runs sign identical certificates.
MOCK_NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


# --- Stack files -----------------------------------------------------------------------------


def stack_names() -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))


def project_defaults() -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    return {key: decl["default"] for key, decl in project["config"].items() if "default" in decl}


def stack_config(stack: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config the CLI would hand the program: Pulumi.yaml defaults, then the stack file.

    Keys are returned without the project prefix, values as Python objects.
    """
    config = project_defaults()
    stack_file = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    for key, value in (stack_file.get("config") or {}).items():
        project, _, name = key.partition(":")
        assert project == PROJECT, f"Pulumi.{stack}.yaml: {key} is not a {PROJECT} key"
        assert not (isinstance(value, dict) and "secure" in value), (
            f"Pulumi.{stack}.yaml: {key} holds a ciphertext the tests cannot decrypt"
        )
        config[name] = value
    config.update(overrides or {})
    return config


def to_raw(config: Mapping[str, Any], project: str = PROJECT) -> dict[str, str]:
    """Encode config as the engine does: strings as they are, everything else as JSON."""
    return {
        f"{project}:{key}": value if isinstance(value, str) else json.dumps(value)
        for key, value in config.items()
    }


# --- Secrets ---------------------------------------------------------------------------------


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere in `value` (secret markers included, as plain values)."""
    for _, leaf, _ in leaves(value):
        if isinstance(leaf, str):
            yield leaf


def plain(value: Any) -> Any:
    """The value with every secret marker removed."""
    if is_secret(value):
        return plain(value["value"])
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def leaves(value: Any, path: str = "", secret: bool = False) -> Iterator[tuple[str, Any, bool]]:
    """Every scalar under `value` as (path, value, is it inside a secret)."""
    if is_secret(value):
        yield from leaves(value["value"], path, True)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, f"{path}.{k}" if path else k, secret)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]", secret)
    else:
        yield path, value, secret


# --- The recorded graph ----------------------------------------------------------------------


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    dependencies: list[str]
    raw_inputs: dict[str, Any]
    options: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def inputs(self) -> dict[str, Any]:
        return plain(self.raw_inputs)

    def __repr__(self) -> str:
        return f"<{self.urn}>"


@dataclass
class Graph:
    stack: str
    config: dict[str, Any]
    resources: list[Resource]
    raw_outputs: dict[str, Any]
    error: BaseException | None = None

    @property
    def outputs(self) -> dict[str, Any]:
        return plain(self.raw_outputs)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def get(self, type_: str, name: str) -> Resource:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        assert len(found) == 1, f"expected one {type_} named {name}, found {found}"
        return found[0]

    def find(self, type_: str, name: str) -> Resource | None:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        return found[0] if found else None

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    def charts(self) -> dict[str, Resource]:
        """Helm v4 charts by release name."""
        return {
            r.inputs.get("name") or r.name: r for r in self.of_type("kubernetes:helm.sh/v4:Chart")
        }

    def ancestors(self, res: Resource) -> list[Resource]:
        out = []
        while res.parent and any(r.urn == res.parent for r in self.resources):
            res = self.by_urn(res.parent)
            out.append(res)
        return out

    def waits_for(self, res: Resource, other: Resource) -> bool:
        """True when `res` (or a component it sits in) depends, directly or transitively, on
        `other` (or on a resource inside `other`)."""
        targets = {other.urn} | {r.urn for r in self.resources if other in self.ancestors(r)}
        seen: set[str] = set()
        todo = [res, *self.ancestors(res)]
        while todo:
            cur = todo.pop()
            if cur.urn in seen:
                continue
            seen.add(cur.urn)
            for dep in cur.dependencies:
                if dep in targets:
                    return True
                found = [r for r in self.resources if r.urn == dep]
                todo.extend(found)
                todo.extend(a for f in found for a in self.ancestors(f))
        return False

    def kubernetes_objects(self) -> list[Resource]:
        """Every Kubernetes object the program writes itself (not chart or YAML renders)."""
        return [
            r
            for r in self.resources
            if r.type.startswith("kubernetes:")
            and r.custom
            and not r.type.startswith(("kubernetes:helm.sh", "kubernetes:yaml", "pulumi:providers"))
        ]


# --- Mocks -----------------------------------------------------------------------------------


def _seeded_key(seed: str) -> ec.EllipticCurvePrivateKey:
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    return ec.derive_private_key(number % (order - 1) + 1, ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def self_signed_anchor(
    cn: str, days: int = 3650, path_length: int | None = None
) -> tuple[str, str]:
    """A trust anchor as an operator would bring one: an ECDSA P-256 self-signed CA valid from
    yesterday for `days`. Returns (certificate PEM, PKCS#8 key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(key)


def _name(subject: Mapping[str, Any] | None) -> x509.Name:
    cn = (subject or {}).get("commonName") or "unnamed"
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _sign(
    inputs: Mapping[str, Any],
    subject: x509.Name,
    public_key: Any,
    issuer: x509.Name,
    issuer_key: Any,
    serial_seed: str,
) -> tuple[str, str]:
    hours = int(inputs.get("validityPeriodHours", 24))
    is_ca = bool(inputs.get("isCaCertificate"))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(int.from_bytes(hashlib.sha256(serial_seed.encode()).digest()[:16], "big"))
        .not_valid_before(MOCK_NOW)
        .not_valid_after(MOCK_NOW + datetime.timedelta(hours=hours))
        .add_extension(
            x509.BasicConstraints(
                ca=is_ca,
                path_length=int(inputs["maxPathLength"])
                if is_ca and inputs.get("maxPathLength") is not None
                else None,
            ),
            critical=True,
        )
    )
    dns = inputs.get("dnsNames") or []
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
    uses = set(inputs.get("allowedUses") or [])
    if uses & {"cert_signing", "crl_signing", "digital_signature", "key_encipherment"}:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature="digital_signature" in uses,
                content_commitment=False,
                key_encipherment="key_encipherment" in uses,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign="cert_signing" in uses,
                crl_sign="crl_signing" in uses,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    end = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return cert.public_bytes(serialization.Encoding.PEM).decode(), end


class StatefulMocks(mocks.Mocks):
    """Echo inputs; make real key material for tls/random; remember state across runs."""

    state: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = plain(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            # Read, never stored: what the other stack exports now, as the engine answers it.
            name = str(inputs.get("name") or args.resource_id)
            raw = self.peers.get(name, {})
            return name, {
                "name": name,
                "outputs": plain(raw),
                "secretOutputNames": sorted(k for k, v in raw.items() if is_secret(v)),
            }
        if args.resource_id and args.typ == "kubernetes:core/v1:Secret":
            # A read of a ServiceAccount token Secret: filled in, as the token controller does.
            token = hashlib.sha256(f"{pulumi.get_stack()}/{args.resource_id}".encode()).hexdigest()
            return args.resource_id, {
                "type": "kubernetes.io/service-account-token",
                "data": {
                    "token": base64.b64encode(token.encode()).decode(),
                    "ca.crt": base64.b64encode(
                        b"cluster CA of " + pulumi.get_stack().encode()
                    ).decode(),
                },
            }
        if args.resource_id and args.typ == "kubernetes:core/v1:Service":
            # A read of a LoadBalancer Service the cluster has given an address.
            return args.resource_id, {
                "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.20"}]}}
            }
        # Keys are made per stack, as two stacks' providers would: the same resource name in
        # two stacks (each cluster's `identity-issuer-key`) must not give the same key.
        stack = pulumi.get_stack() if args.typ == "tls:index/privateKey:PrivateKey" else ""
        key = json.dumps([args.typ, args.name, inputs, stack], sort_keys=True, default=str)
        if key not in self.state:
            self.state[key] = {**inputs, **self._outputs(args.typ, args.name, inputs)}
        return f"{args.name}_id", self.state[key]

    load_balancer: dict[str, str] = {"ip": "203.0.113.10"}
    """What a LoadBalancer Service's status reports (`ip`, or `hostname` as on AWS)."""
    peers: dict[str, dict[str, Any]] = {}
    """Other stacks' outputs by `<org>/<project>/<stack>`, as recorded (`Graph.raw_outputs`,
    secret markers kept): what `readStackOutputs` and a StackReference answer for them."""
    previous: dict[str, Any] = {}
    """The outputs the engine's `readStackOutputs` answers: the stack's last update. Empty, as
    for a stack never updated, unless a test sets it to simulate a later `pulumi up`."""

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        # An empty failure list, not None: the mock monitor iterates it.
        if args.token == "pulumi:pulumi:readStackOutputs":
            name = args.args.get("name")
            if name in self.peers:
                return {"name": name, "outputs": plain(self.peers[name])}, []
            return {"name": name, "outputs": dict(self.previous)}, []
        return {}, []

    def _outputs(self, typ: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        if typ == "tls:index/privateKey:PrivateKey":
            assert inputs.get("algorithm") == "ECDSA", f"{name}: mocks make ECDSA keys only"
            curve = {"P256": ec.SECP256R1(), "P384": ec.SECP384R1()}[inputs["ecdsaCurve"]]
            key: Any = (
                _seeded_key(f"{pulumi.get_stack()}/{name}")
                if isinstance(curve, ec.SECP256R1)
                else ec.generate_private_key(curve)
            )
            public = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            pem = _pem_key(key)
            return {
                "privateKeyPem": pem,
                "privateKeyPemPkcs8": pem,
                "publicKeyPem": public.decode(),
            }
        if typ == "tls:index/selfSignedCert:SelfSignedCert":
            signer: Any = serialization.load_pem_private_key(inputs["privateKeyPem"].encode(), None)
            subject = _name(inputs.get("subject"))
            pem, end = _sign(inputs, subject, signer.public_key(), subject, signer, name)
            return {"certPem": pem, "validityEndTime": end}
        if typ == "tls:index/certRequest:CertRequest":
            owner: Any = serialization.load_pem_private_key(inputs["privateKeyPem"].encode(), None)
            builder = x509.CertificateSigningRequestBuilder().subject_name(
                _name(inputs.get("subject"))
            )
            if inputs.get("dnsNames"):
                builder = builder.add_extension(
                    x509.SubjectAlternativeName([x509.DNSName(d) for d in inputs["dnsNames"]]),
                    critical=False,
                )
            signed = builder.sign(owner, hashes.SHA256())
            return {"certRequestPem": signed.public_bytes(serialization.Encoding.PEM).decode()}
        if typ == "tls:index/locallySignedCert:LocallySignedCert":
            request = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
            ca = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
            ca_key: Any = serialization.load_pem_private_key(
                inputs["caPrivateKeyPem"].encode(), None
            )
            # Like the provider, the certificate takes its names from the request.
            try:
                san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                inputs = {**inputs, "dnsNames": san.get_values_for_type(x509.DNSName)}
            except x509.ExtensionNotFound:
                pass
            pem, end = _sign(
                inputs, request.subject, request.public_key(), ca.subject, ca_key, name
            )
            return {"certPem": pem, "validityEndTime": end}
        if typ == "random:index/randomPassword:RandomPassword":
            digest = hashlib.sha256(name.encode()).hexdigest()
            # A bcrypt-shaped hash (cost 10, 53 characters of salt and hash) of the result.
            return {
                "result": digest[: int(inputs.get("length", 16))],
                "bcryptHash": "$2a$10$" + (digest * 2)[:53],
            }
        if typ == "kubernetes:core/v1:Service":
            spec = inputs.get("spec") or {}
            if spec.get("type") == "LoadBalancer":
                return {"status": {"loadBalancer": {"ingress": [dict(self.load_balancer)]}}}
        return {}


class RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, plus a record of every registration request as the engine sees it."""

    def __init__(self, mocks_: mocks.Mocks) -> None:
        super().__init__(mocks_)
        self.requests: list[Any] = []
        self.stack_outputs: dict[str, Any] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.requests.append((request, response.urn))
        return response

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        # `.get()` and StackReference read existing state instead of registering it.
        response = super().ReadResource(request)
        self.requests.append((request, response.urn))
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        # Only the root stack's own URN has the Stack type as its type segment; every
        # top-level component's URN contains it as a parent type too.
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
            self.stack_outputs = json_format.MessageToDict(request.outputs)
        return super().RegisterResourceOutputs(request)


def run_program(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    secret_keys: tuple[str, ...] = SECRET_CONFIG_KEYS,
    peers: Mapping[str, Graph] | None = None,
    as_stack: str = "",
    previous: Graph | None = None,
) -> Graph:
    """Run `__main__.py` for `stack` (its files plus `overrides`) and return the graph.

    `secret_keys`: the keys set as with `--secret` (when present). A program error is kept in
    `Graph.error` rather than raised, so tests can assert on it. `peers`: other stacks' runs by
    `<org>/<project>/<stack>`, whose recorded outputs StackReferences answer with; `as_stack`:
    the stack's name when it is not the stack file's (several clusters from one file);
    `previous`: the stack's own last run.
    """
    config = stack_config(stack, overrides)
    engine = StatefulMocks()
    engine.peers = {name: dict(g.raw_outputs) for name, g in (peers or {}).items()}
    engine.previous = dict(previous.outputs) if previous is not None else {}
    return record(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        stack=as_stack or stack,
        config=config,
        secret_keys=secret_keys,
        engine=engine,
    )


TRUST_PROJECT = "meshstack-trust"


def run_trust(config: Mapping[str, Any] | None = None, stack: str = "trust") -> Graph:
    """Run the trust stack (`trust/__main__.py`) with `config` and return the graph."""
    return record(
        lambda: runpy.run_path(str(ROOT / "trust" / "__main__.py"), run_name="__main__"),
        stack=stack,
        config=dict(config or {}),
        project=TRUST_PROJECT,
    )


def record(
    program: Callable[[], Any],
    stack: str = "dev",
    config: Mapping[str, Any] | None = None,
    project: str = PROJECT,
    engine: mocks.Mocks | None = None,
    preview: bool = False,
    secret_keys: tuple[str, ...] = SECRET_CONFIG_KEYS,
) -> Graph:
    """Run `program` (any function that registers resources) under the recording mocks.

    `project` names the config namespace (another Pulumi project, such as the consumer
    example); `engine` replaces the default `StatefulMocks`; `preview` runs it as a preview,
    where an output the engine does not report is unknown.
    """
    config = dict(config or {})
    monitor = RecordingMonitor(engine or StatefulMocks())
    old = pulumi_settings.SETTINGS
    error: BaseException | None = None
    try:
        # A fresh root stack per run: outputs exported by an earlier run must not leak in.
        pulumi_settings.ROOT.set(None)
        # `organization`: what the local (file://) backend reports, as `make up` uses it.
        mocks.set_mocks(
            monitor.mocks,
            project=project,
            stack=stack,
            preview=preview,
            monitor=monitor,
            organization="organization",
        )
        pulumi.runtime.set_all_config(
            to_raw(config, project),
            secret_keys=[f"{project}:{k}" for k in secret_keys if k in config],
        )

        @pulumi.runtime.test
        def run() -> None:
            program()

        try:
            run()
        except Exception as exc:
            error = exc
        root = pulumi_settings.get_root_resource()
        # Under mocks the root stack registered its (then empty) outputs when it was made;
        # the exports sit on the Stack object. A failed program has no outputs to read.
        if error is None and root is not None and not monitor.stack_outputs:
            monitor.stack_outputs = _stack_outputs(root)
    finally:
        pulumi_settings.configure(old)

    resources = []
    registrations = monitor.get_registered_resources()
    for request, urn in monitor.requests:
        reg = registrations.get(urn)
        read = not hasattr(request, "custom")  # a ReadResourceRequest
        resources.append(
            Resource(
                urn=urn,
                type=request.type,
                name=request.name,
                custom=True if read else request.custom,
                parent=request.parent,
                dependencies=list(request.dependencies),
                raw_inputs=json_format.MessageToDict(
                    request.properties if read else request.object
                ),
                options={
                    "read": read,
                    "protect": getattr(request, "protect", False),
                    "retainOnDelete": getattr(request, "retainOnDelete", False),
                    "ignoreChanges": list(getattr(request, "ignoreChanges", [])),
                    "deleteBeforeReplace": getattr(request, "deleteBeforeReplace", False),
                    "provider": request.provider,
                    "additionalSecretOutputs": list(request.additionalSecretOutputs),
                    # Callbacks the engine runs on the resource and its children (a transform).
                    "transforms": len(getattr(request, "transforms", [])),
                    "aliases": [
                        json_format.MessageToDict(a) for a in getattr(request, "aliases", [])
                    ],
                },
                state=reg.state if reg else {},
            )
        )
    return Graph(stack, config, resources, monitor.stack_outputs, error)


def _stack_outputs(root: Any) -> dict[str, Any]:
    """Serialize the root stack's outputs with their secret markers, as the engine stores them."""
    outputs = getattr(root, "outputs", {}) or {}

    async def serialize() -> Any:
        struct = await rpc.serialize_properties(outputs, {})
        return json_format.MessageToDict(struct)

    result: dict[str, Any] = {}

    @pulumi.runtime.test
    def collect() -> Any:
        import asyncio

        async def go() -> None:
            result.update(await serialize())

        return asyncio.ensure_future(go())

    collect()
    return result
