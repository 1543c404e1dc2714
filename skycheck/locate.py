"""Where each offline finding is in the user's manifests: a file and a line to annotate.

Every check, granted or not, is placed on the document (or the rule entry inside it) that
it concerns, so code scanning, GitHub annotations and JUnit reporters mark the user's own
lines. Nearest first:

- granted: the rule that grants it, in the Role or ClusterRole the authorizer used (for an
  aggregated ClusterRole, the ClusterRole that contributes the rule); when that role is not
  in the manifests (the bootstrap policy's ``edit``), the binding that grants it;
- missing or undecided, the nearest place to fix it:

  1. ``rule``: a rule on the same resource, in a role bound to the subject where the check
     is asked (add the verb, the subresource, the name there);
  2. ``near-miss-binding``: a binding of the subject in another namespace whose role has
     such a rule, else a binding that names the subject almost right (its name, another
     kind or namespace);
  3. ``group-rule``: a rule of the same API group in a role bound to the subject;
  4. ``role``: a role bound to the subject;
  5. ``binding``: a binding of the subject (its role is not in the manifests);
  6. ``service-account``: the checked ServiceAccount's document;
  7. ``first-document``: the input's first document.

Bindings where the check is asked come before the others at each step. Objects of the
Kubernetes bootstrap policy have no file, so they are never a location. Paths are relative
to the working directory, as code scanning wants them (absolute when outside it); standard
input has no path (``input: stdin``), only its line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from skycheck import rbac
from skycheck.manifests import STDIN, Manifests, ObjectKey, Position
from skycheck.models import Basis, Decision, Finding, Location, Report, Requirement, Subject
from skycheck.names import split_sa_username


def display_path(source: str, cwd: Path | None = None) -> str:
    """``source`` relative to ``cwd`` (default: the working directory), with ``/``; absolute
    when it is outside it, as code scanning resolves paths against the checkout."""
    base = os.path.abspath(cwd if cwd is not None else os.getcwd())
    full = os.path.abspath(source)
    rel = os.path.relpath(full, base)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return Path(full).as_posix()
    return Path(rel).as_posix()


def locate_report(
    report: Report, manifests: Manifests, state: rbac.RbacState, cwd: Path | None = None
) -> Report:
    """The report with every finding's location set (offline reports only)."""
    locator = Locator(manifests, state, report.subject, report.context, cwd)
    return replace(
        report, findings=tuple(replace(f, location=locator.locate(f)) for f in report.findings)
    )


class Locator:
    """Finds locations for one subject's findings over one set of manifests."""

    def __init__(
        self,
        manifests: Manifests,
        state: rbac.RbacState,
        subject: Subject,
        context: str | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.manifests = manifests
        self.state = state
        self.subject = subject
        self.context = context
        self.cwd = cwd
        # Every binding that names the subject or one of its groups, with the subject entry
        # that applies (bindings_for also lists entries that name it in another way).
        self.bound: list[tuple[rbac.Binding, int]] = []
        for b in state.bindings_for(subject.username, subject.groups):
            for i, s in enumerate(b.subjects):
                if rbac.applies_to_user(subject.username, subject.groups, s, b.namespace):
                    self.bound.append((b, i))
                    break
        self._paths: dict[str, str] = {}
        self._aggregable: list[rbac.ClusterRole] | None = None
        self._rule_lines: dict[int, tuple[int, ...]] = {}
        self._scoped_by_ns: dict[str, list[tuple[rbac.Binding, int]]] = {}
        self._rules_by_binding: dict[int, list[tuple[rbac.PolicyRule, Position, int]]] = {}

    # -- the answer --------------------------------------------------------------------

    def locate(self, finding: Finding) -> Location:
        req = finding.requirement
        request = rbac.Request(
            self.subject.username,
            self.subject.groups,
            req.verb,
            req.request_namespace,
            req.group,
            req.resource,
            req.subresource,
            req.name,
        )
        if finding.decision is Decision.ALLOWED:
            found = self._grant(request)
            if found is not None:
                return found
        for step in (self._rule, self._near_miss, self._group_rule, self._role, self._binding):
            found = step(request)
            if found is not None:
                return found
        return self._last_resort(req)

    def _at(self, pos: Position, basis: Basis, line: int | None = None) -> Location:
        if pos.source == STDIN:
            path, where = None, "stdin"
        else:
            path = self._paths.get(pos.source)
            if path is None:
                path = self._paths[pos.source] = display_path(pos.source, self.cwd)
            where = "file"
        return Location(
            self.subject.identity,
            self.context,
            basis,
            where,
            path,
            line if line is not None else pos.line,
            pos.object,
        )

    # -- the steps ---------------------------------------------------------------------

    def _position(self, key: ObjectKey) -> Position | None:
        return self.manifests.positions.get(key)

    def _in_scope(self, request: rbac.Request) -> list[tuple[rbac.Binding, int]]:
        """Bindings of the subject that apply where the request is asked, in the
        authorizer's order (ClusterRoleBindings, then the namespace's RoleBindings)."""
        found = self._scoped_by_ns.get(request.namespace)
        if found is None:
            found = self._scoped_by_ns[request.namespace] = [
                (b, i)
                for b, i in self.bound
                if isinstance(b, rbac.ClusterRoleBinding)
                or (request.namespace and b.namespace == request.namespace)
            ]
        return found

    def _out_of_scope(self, request: rbac.Request) -> Iterator[tuple[rbac.Binding, int]]:
        scoped = {id(b) for b, _ in self._in_scope(request)}
        for b, i in self.bound:
            if id(b) not in scoped:
                yield b, i

    def _role_key(self, b: rbac.Binding) -> ObjectKey:
        ref = b.role_ref
        return (ref.kind, b.namespace if ref.kind == "Role" else "", ref.name)

    def _rules_of(self, b: rbac.Binding) -> list[tuple[rbac.PolicyRule, Position, int]]:
        """The bound role's rules that the manifests hold, each with its line (found once
        per binding: every finding asks again)."""
        found = self._rules_by_binding.get(id(b))
        if found is None:
            found = self._rules_by_binding[id(b)] = list(self._find_rules(b))
        return found

    def _find_rules(self, b: rbac.Binding) -> Iterator[tuple[rbac.PolicyRule, Position, int]]:
        key = self._role_key(b)
        role = self.state.role(key[1], key[2]) if key[0] == "Role" else None
        cluster_role = self.state.cluster_role(key[2]) if key[0] == "ClusterRole" else None
        own = role or cluster_role
        if own is not None:
            pos = self._position(key)
            if pos is not None:
                yield from self._lines(own.rules, pos)
        if cluster_role is not None and cluster_role.aggregation is not None:
            # Aggregated: the rules come from the ClusterRoles its selectors pick.
            for other in self._cluster_roles():
                labels = dict(other.labels)
                if other is cluster_role or not any(
                    sel.matches(labels) for sel in cluster_role.aggregation
                ):
                    continue
                pos = self._position(rbac.object_key(other))
                if pos is None:
                    continue
                yield from self._lines(other.rules, pos)

    def _lines(
        self, rules: tuple[rbac.PolicyRule, ...], pos: Position
    ) -> Iterator[tuple[rbac.PolicyRule, Position, int]]:
        """Each rule with its entry's line, or the role's line where that is not known."""
        lines = self._rule_lines.get(id(pos)) if rules else ()
        if lines is None:  # found once per role (a JSON List's item reads its text for them)
            lines = self._rule_lines[id(pos)] = pos.entry_lines("rules")
        known = len(lines) == len(rules)
        for index, rule in enumerate(rules):
            yield rule, pos, lines[index] if known else pos.line

    def _cluster_roles(self) -> list[rbac.ClusterRole]:
        """The manifests' ClusterRoles that stand (not redefined later), found once."""
        if self._aggregable is None:
            self._aggregable = [
                o
                for o in self.manifests.objects
                if isinstance(o, rbac.ClusterRole) and self.state.cluster_role(o.name) is o
            ]
        return self._aggregable

    def _grant(self, request: rbac.Request) -> Location | None:
        for b, _ in self._in_scope(request):
            resolved = self.state.resolve(b.role_ref, b.namespace)
            if resolved.error or not any(rbac.rule_allows(request, r) for r in resolved.rules):
                continue
            for rule, pos, line in self._rules_of(b):
                if rbac.rule_allows(request, rule):
                    return self._at(pos, Basis.GRANT, line)
            at = self._position(rbac.object_key(b))
            if at is not None:  # its role is the bootstrap policy's: the binding grants
                return self._at(at, Basis.GRANT)
        return None

    @staticmethod
    def _same_resource(request: rbac.Request, rule: rbac.PolicyRule) -> bool:
        if not rbac.api_group_matches(rule, request.api_group):
            return False
        if rbac.resource_matches(rule, request.combined_resource, request.subresource):
            return True
        return request.resource in rule.resources or any(
            r.startswith(request.resource + "/") for r in rule.resources
        )

    def _rule(self, request: rbac.Request) -> Location | None:
        for b, _ in self._in_scope(request):
            for rule, pos, line in self._rules_of(b):
                if self._same_resource(request, rule):
                    return self._at(pos, Basis.RULE, line)
        return None

    def _near_miss(self, request: rbac.Request) -> Location | None:
        for b, _ in self._out_of_scope(request):
            pos = self._position(rbac.object_key(b))
            if pos is not None and any(
                self._same_resource(request, r) for r, _, _ in self._rules_of(b)
            ):
                return self._at(pos, Basis.NEAR_MISS_BINDING)
        sa = split_sa_username(request.user)
        bare = sa[1] if sa is not None else request.user
        applied = {id(b) for b, _ in self.bound}
        looks = [b for b in self.state.bindings_naming(bare) if id(b) not in applied]
        looks.sort(key=lambda b: not self._scoped(b, request))
        for b in looks:
            pos = self._position(rbac.object_key(b))
            if pos is None:
                continue
            subject_lines = pos.entry_lines("subjects")
            for i, s in enumerate(b.subjects):
                if s.name == bare and i < len(subject_lines):
                    return self._at(pos, Basis.NEAR_MISS_BINDING, subject_lines[i])
            return self._at(pos, Basis.NEAR_MISS_BINDING)
        return None

    @staticmethod
    def _scoped(b: rbac.Binding, request: rbac.Request) -> bool:
        return isinstance(b, rbac.ClusterRoleBinding) or b.namespace == request.namespace

    def _group_rule(self, request: rbac.Request) -> Location | None:
        for b, _ in self._in_scope(request):
            for rule, pos, line in self._rules_of(b):
                if rbac.api_group_matches(rule, request.api_group) and not rule.non_resource_urls:
                    return self._at(pos, Basis.GROUP_RULE, line)
        return None

    def _role(self, request: rbac.Request) -> Location | None:
        for b, _ in [*self._in_scope(request), *self._out_of_scope(request)]:
            pos = self._position(self._role_key(b))
            if pos is not None:
                return self._at(pos, Basis.ROLE)
        return None

    def _binding(self, request: rbac.Request) -> Location | None:
        for b, i in [*self._in_scope(request), *self._out_of_scope(request)]:
            pos = self._position(rbac.object_key(b))
            if pos is not None:
                subject_lines = pos.entry_lines("subjects")
                line = subject_lines[i] if i < len(subject_lines) else None
                return self._at(pos, Basis.BINDING, line)
        return None

    def _last_resort(self, req: Requirement) -> Location:
        s = self.subject
        if s.is_service_account and s.namespace is not None:
            pos = self.manifests.account_positions.get((s.namespace, s.name))
            if pos is not None:
                return self._at(pos, Basis.SERVICE_ACCOUNT)
        if self.manifests.first is not None:
            return self._at(self.manifests.first, Basis.FIRST_DOCUMENT)
        return Location(s.identity, self.context, Basis.NONE, "none")
