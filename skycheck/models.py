"""The data skycheck passes between its stages.

Everything here is a frozen, slotted dataclass with tuple fields, so a Report
can be shared between renderers and the fix-it generator without anyone
changing it underneath the others.

Flow: catalogue ``Rule`` -> bound ``Requirement`` (one verb, one resource, one
namespace) -> reviewer ``Finding`` (a ``Decision`` with its reason) -> ``Report``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from skycheck.excess_types import Excess, ExcessState, Risk
from skycheck.names import sa_username, split_sa_username
from skycheck.permission import Permission
from skycheck.requestinfo import request_namespace

SCHEMA_VERSION = 1

ALL_SERVICE_ACCOUNTS = "system:serviceaccounts"
AUTHENTICATED = "system:authenticated"


class Scope(str, enum.Enum):
    """Where a catalogue rule applies."""

    NAMESPACE = "namespace"  # the namespace being checked (-n)
    FIXED = "fixed"  # a namespace SkyPilot hard-codes (skypilot-system, ingress-nginx)
    CLUSTER = "cluster"  # cluster scope: namespace "" in an access review


class Decision(str, enum.Enum):
    """What the authorizer said about one requirement."""

    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"  # could not be checked; never counted as granted


class Verdict(str, enum.Enum):
    """The outcome of a whole report (or of one feature)."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


class FailOn(str, enum.Enum):
    """Which checks make the gate fail (``--fail-on``)."""

    REQUIRED = "required"
    OPTIONAL = "optional"  # every checked feature, required or not
    NEVER = "never"  # missing permissions never fail; undecided required checks still exit 3


class Effect(str, enum.Enum):
    """What a 403 on a check does to SkyPilot, as the lab observed it for one version."""

    FATAL = "fatal"  # the operation stops
    DEGRADES = "degrades"  # SkyPilot goes on without something (the rule says what)
    DOCUMENTED = "documented"  # in the docs' minimum; that SkyPilot version never asks


class Profile(str, enum.Enum):
    """Which effects gate (``--profile``)."""

    SKYPILOT = "skypilot"  # what SkyPilot needs: fatal checks gate
    DOCS = "docs"  # the docs' minimum as well: fatal and documented checks gate

    def gates(self, effect: Effect) -> bool:
        # degrades never gates: SkyPilot goes on, and the report says what is lost
        return effect is Effect.FATAL or (self is Profile.DOCS and effect is Effect.DOCUMENTED)


class Method(str, enum.Enum):
    """How decisions were obtained (JSON ``method``)."""

    SSAR = "SelfSubjectAccessReview"
    SAR = "SubjectAccessReview"
    LOCAL_SAR = "LocalSubjectAccessReview"
    IMPERSONATION = "Impersonation"
    OFFLINE = "Offline"


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of the catalogue: a resource and the verbs a feature needs on it."""

    id: str
    feature: str
    group: str
    resource: str
    subresource: str
    verbs: tuple[str, ...]
    scope: Scope
    namespace: str  # only for Scope.FIXED
    why: str
    breaks: str
    source: str
    name: str = ""  # a resourceName, when SkyPilot only touches one object
    # (version, verb, effect) for every proven SkyPilot version the verb applies to; a
    # verb absent for a version is not checked against that version.
    effects: tuple[tuple[str, str, Effect], ...] = ()
    lost: str = ""  # what SkyPilot goes without when a "degrades" check is denied
    # Why the lab cannot show this rule's requests (they come after the point a launch on
    # fake nodes reaches): its effects come from reading SkyPilot, not from a run.
    unproven: str = ""
    when: tuple[str, ...] = ()  # only when these features apply to the identity too
    alternative: Alternative | None = None
    # The objects SkyPilot's named requests touch ("{namespace}": the checked namespace);
    # see catalogue.bind for which verbs carry a name.
    names: tuple[str, ...] = ()
    # "pods": made by SkyPilot's pods as their own service account (the remote_identity),
    # checked only for that account; "" (the default): made by the launching identity.
    account: str = ""

    @property
    def resource_path(self) -> str:
        """``resource`` or ``resource/subresource``, as RBAC rules spell it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def effect(self, version: str, verb: str) -> Effect | None:
        """The effect of ``verb`` for SkyPilot ``version``; None: that version never needs it."""
        for v, vb, effect in self.effects:
            if v == version and vb == verb:
                return effect
        return None


@dataclass(frozen=True, slots=True)
class Holding:
    """One permission of an alternative: held in the rule's namespace or cluster-wide."""

    group: str
    resource: str
    verbs: tuple[str, ...]
    cluster: bool = False


@dataclass(frozen=True, slots=True)
class Alternative:
    """What the apiserver accepts instead of a rule's verb (bind/escalate): holding
    every permission the role grants (pkg/registry/rbac/validation ConfirmNoEscalation)."""

    text: str
    holds: tuple[Holding, ...]


@dataclass(frozen=True, slots=True)
class Feature:
    """A SkyPilot feature: one rules/*.yaml file."""

    name: str
    title: str
    description: str
    source_file: str
    rules: tuple[Rule, ...]

    @property
    def fixed_namespaces(self) -> tuple[str, ...]:
        """Namespaces SkyPilot hard-codes for this feature; they must exist."""
        return tuple(sorted({r.namespace for r in self.rules if r.scope is Scope.FIXED}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement(Permission):
    """One access check: one verb on one resource in one namespace ("" = cluster)."""

    id: str  # stable: "<rule id>.<verb>" (a rule has one scope, so this is unique)
    rule_id: str
    feature: str
    required: bool
    why: str
    breaks: str
    source: str
    effect: Effect = Effect.FATAL
    lost: str = ""
    alternative: Alternative | None = None
    # Who makes the request: "launcher" (sky launch's identity) or "pods" (SkyPilot's pods,
    # as their own service account).
    account: str = "launcher"

    @property
    def request_namespace(self) -> str:
        """The namespace the API server authorizes SkyPilot's request in (requestinfo.py):
        ``namespace`` but for a namespace read or written by name, which is its own."""
        return request_namespace(
            self.verb, self.group, self.resource, self.subresource, self.namespace, self.name
        )


def namespaces_to_look_up(requirements: Sequence[Requirement]) -> list[str]:
    """The namespaces whose existence a check needs: those its checks are asked in, and
    those it reads by name (SkyPilot's get of skypilot-system before creating it), sorted.

    The engine adds a namespace precondition for both (engine._namespace_preconditions)."""
    wanted = {r.namespace for r in requirements if r.namespace}
    wanted |= {
        r.name for r in requirements if r.resource == "namespaces" and not r.group and r.name
    }
    return sorted(wanted)


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is checked. ``kind`` is User, ServiceAccount or Group."""

    kind: str
    name: str
    namespace: str | None
    username: str
    groups: tuple[str, ...] = ()
    uid: str = ""

    @classmethod
    def service_account(cls, name: str, namespace: str) -> Subject:
        """The identity a service account's token carries (its groups included)."""
        return cls(
            kind="ServiceAccount",
            name=name,
            namespace=namespace,
            username=sa_username(namespace, name),
            groups=(ALL_SERVICE_ACCOUNTS, f"{ALL_SERVICE_ACCOUNTS}:{namespace}", AUTHENTICATED),
        )

    @classmethod
    def user(cls, username: str, groups: tuple[str, ...] = (), uid: str = "") -> Subject:
        """A user; a username of the service-account form is treated as that account."""
        parts = split_sa_username(username)
        if parts is not None:
            sa = cls.service_account(parts[1], parts[0])
            merged = tuple(dict.fromkeys((*groups, *sa.groups))) if groups else sa.groups
            return cls("ServiceAccount", sa.name, sa.namespace, sa.username, merged, uid)
        return cls(
            kind="User",
            name=username,
            namespace=None,
            username=username,
            groups=tuple(groups),
            uid=uid,
        )

    @property
    def is_service_account(self) -> bool:
        return self.kind == "ServiceAccount"

    @property
    def identity(self) -> str:
        """Who, in one word: the user name, or ``group:NAME`` for a group."""
        return self.username if self.kind != "Group" else f"group:{self.name}"

    @property
    def bindable(self) -> bool:
        """A binding can name it: a user name, or a group (which has none of its own)."""
        return bool(self.username) or self.kind == "Group"


class NamespaceState(str, enum.Enum):
    """Whether a namespace SkyPilot hard-codes is there."""

    EXISTS = "exists"
    MISSING = "missing"
    UNKNOWN = "unknown"  # could not be read; never taken for missing


# Namespaces SkyPilot hard-codes that it owns: a fix may create them. Any other one
# (ingress-nginx) belongs to a component that must be installed, which a Namespace
# object or a Role would only pretend to do (``kubectl auth reconcile`` creates the
# namespace of a Role it applies).
SKYPILOT_NAMESPACES = frozenset({"skypilot-system"})
NAMESPACE_OWNERS = {"ingress-nginx": "the ingress controller (ingress-nginx)"}


@dataclass(frozen=True, slots=True)
class NamespacePrecondition:
    """A namespace a feature needs to exist, what was found, and what can be done.

    ``may_create`` is asked only for a missing namespace SkyPilot owns: whether
    the identity may create namespaces (None: not asked). ``why`` says what
    could not be read when the state is unknown.
    """

    feature: str
    namespace: str
    state: NamespaceState
    may_create: Decision | None = None
    why: str = ""

    @property
    def skypilot_owned(self) -> bool:
        """SkyPilot's own namespace: when missing, a fix may create it."""
        return self.namespace in SKYPILOT_NAMESPACES

    @property
    def owner(self) -> str:
        """Who puts the namespace there."""
        if self.skypilot_owned:
            return "SkyPilot"
        return NAMESPACE_OWNERS.get(self.namespace, f"whatever installs {self.namespace}")


class Basis(str, enum.Enum):
    """What a finding's location is (JSON ``location.basis``), nearest first."""

    GRANT = "grant"  # the rule that grants the check
    RULE = "rule"  # a rule on the same resource, of a role bound to the subject
    NEAR_MISS_BINDING = "near-miss-binding"  # binds the subject in another scope, or a look-alike
    GROUP_RULE = "group-rule"  # a rule of the same API group, of a role bound to the subject
    ROLE = "role"  # a role bound to the subject
    BINDING = "binding"  # a binding of the subject (its role is not in the manifests)
    SERVICE_ACCOUNT = "service-account"  # the checked ServiceAccount's document
    FIRST_DOCUMENT = "first-document"  # nothing nearer: the input's first document
    NONE = "none"  # the input has no document
    CLUSTER = "cluster"  # a live check: the identity and context, no file


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding is, for annotations on the user's files.

    Offline: ``path`` (relative to the working directory, absolute outside it; None for
    standard input) and ``line`` (1-based) of the document or rule entry ``basis`` names,
    and that ``object`` (kind, namespace, name). Live: the ``identity`` and ``context``
    only. ``input`` says which: "file", "stdin", "cluster" or "none" (nothing to point at).
    """

    identity: str
    context: str | None
    basis: Basis = Basis.CLUSTER
    input: str = "cluster"
    path: str | None = None
    line: int | None = None
    object: tuple[str, str, str] | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """The decision for one requirement, and why."""

    requirement: Requirement
    decision: Decision
    reason: str = ""
    evaluation_error: str = ""
    denied_explicitly: bool = False  # a webhook said no (SAR status.denied)
    # Set when this finding stands for a namespace precondition, not a permission.
    precondition: NamespacePrecondition | None = None
    location: Location | None = None  # offline: set by skycheck.locate; live: None


@dataclass(frozen=True, slots=True)
class FeatureStatus:
    name: str
    required: bool
    status: Verdict | None  # None: not applicable to the identity checked
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SkyPilotVersion:
    """The SkyPilot version a report was checked against, and where that choice came from.

    ``version`` is the proven release whose effects decide the checks; ``given`` the
    version as named or installed when it differs (a release with the same Kubernetes
    code, or one newer than every proven release: then ``proven`` is False).
    """

    version: str
    source: str  # "flag" | "installed" | "api-server" | "default"
    given: str = ""
    proven: bool = True

    @property
    def named(self) -> str:
        """The version as given or installed."""
        return self.given or self.version

    def describe(self) -> str:
        """One line for human output, e.g. ``SkyPilot 0.14.0 (flag; as proven 0.14.1)``."""
        if not self.proven:
            how = f"; NOT PROVEN, checked against {self.version}"
        elif self.given:
            how = f"; same Kubernetes code as proven {self.version}"
        else:
            how = ""
        return f"SkyPilot {self.named} ({self.source}{how})"


def combine(decisions: tuple[Decision, ...] | list[Decision]) -> Verdict:
    """Fold decisions: any denial fails, else any unknown is unknown, else pass."""
    if any(d is Decision.DENIED for d in decisions):
        return Verdict.FAIL
    if any(d is Decision.UNKNOWN for d in decisions):
        return Verdict.UNKNOWN
    return Verdict.PASS


def verdict_exit_code(verdict: Verdict) -> int:
    return {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.UNKNOWN: 3}[verdict]


# Which verdict wins when several reports are folded into one exit code.
_SEVERITY = {Verdict.PASS: 0, Verdict.UNKNOWN: 1, Verdict.FAIL: 2}


def worst(verdicts: list[Verdict]) -> Verdict:
    return max(verdicts, key=_SEVERITY.__getitem__, default=Verdict.PASS)


def gate_verdict(reports: Sequence[Report]) -> Verdict:
    """The verdict of a run: the worst of the reports that gate (see ``Report.gates``)."""
    return worst([r.verdict for r in reports if r.gates])


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one check run found, for one context and one identity."""

    mode: str  # "live" | "offline"
    method: Method
    context: str | None
    namespace: str
    subject: Subject
    findings: tuple[Finding, ...]
    features: tuple[str, ...]  # checked feature names, in catalogue order
    required_features: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    fix: str | None = None
    notes: tuple[str, ...] = ()  # derived-setup explanations, shown not gated
    fail_on: FailOn = FailOn.REQUIRED
    skypilot: SkyPilotVersion | None = None
    profile: Profile = Profile.SKYPILOT
    # Features that do not concern this identity, with the reason: shown, never checked.
    not_applicable: tuple[tuple[str, str], ...] = ()
    # Every hard-coded namespace the checked features need, and what was found.
    preconditions: tuple[NamespacePrecondition, ...] = ()
    # False for a report shown for information only (SkyPilot's own service account,
    # which SkyPilot creates and grants itself): its verdict never reaches the exit code.
    gates: bool = True
    # The excess audit (--excess): what the identity holds beyond the need; None: not asked.
    excess: Excess | None = None
    # --fail-on-excess: excess at or above this class fails the verdict; None: never.
    fail_on_excess: Risk | None = None

    def excess_verdict(self) -> Verdict:
        """The gate's word on excess: fail at or above ``fail_on_excess``; unknown when
        the audit could not read what the identity holds (fails closed); else pass."""
        if self.fail_on_excess is None:
            return Verdict.PASS
        if self.excess is None or self.excess.state is ExcessState.UNKNOWN:
            return Verdict.UNKNOWN
        if self.excess.at_least(self.fail_on_excess):
            return Verdict.FAIL
        return Verdict.PASS

    def feature_statuses(self) -> tuple[FeatureStatus, ...]:
        out = []
        skipped = dict(self.not_applicable)
        for name in self.features:
            if name in skipped:
                out.append(FeatureStatus(name, False, None, skipped[name]))
                continue
            decisions = [
                f.decision
                for f in self.findings
                if f.requirement.feature == name and self.profile.gates(f.requirement.effect)
            ]
            out.append(FeatureStatus(name, name in self.required_features, combine(decisions)))
        return tuple(out)

    def gating_findings(self, fail_on: FailOn = FailOn.REQUIRED) -> tuple[Finding, ...]:
        """The findings that decide the verdict under ``fail_on`` and the report's profile."""
        effective = tuple(f for f in self.findings if self.profile.gates(f.requirement.effect))
        if fail_on is FailOn.REQUIRED:
            return tuple(f for f in effective if f.requirement.required)
        return effective

    def verdict_for(self, fail_on: FailOn = FailOn.REQUIRED) -> Verdict:
        if self.findings and all(f.decision is Decision.UNKNOWN for f in self.findings):
            return Verdict.UNKNOWN  # nothing was decided: never a pass
        verdict = combine([f.decision for f in self.gating_findings(fail_on)])
        if fail_on is FailOn.NEVER:
            # Missing permissions are reported but never gate; an undecided check of a
            # required feature still does (as under "required"): never a false pass.
            required = self.gating_findings(FailOn.REQUIRED)
            undecided = any(f.decision is Decision.UNKNOWN for f in required)
            return Verdict.UNKNOWN if undecided else Verdict.PASS
        return verdict

    @property
    def verdict(self) -> Verdict:
        """The gate's verdict under this report's ``fail_on`` and ``fail_on_excess``."""
        return worst([self.verdict_for(self.fail_on), self.excess_verdict()])

    @property
    def exit_code(self) -> int:
        return verdict_exit_code(self.verdict)

    def location_of(self, finding: Finding) -> Location:
        """The finding's location; a live one (no file) says the identity and context."""
        if finding.location is not None:
            return finding.location
        if self.mode == "offline":  # not located (no manifests read): nothing to point at
            return Location(self.subject.identity, self.context, Basis.NONE, "none")
        return Location(self.subject.identity, self.context)
