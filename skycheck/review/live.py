"""Live reviews against a kube-apiserver.

For the caller: SelfSubjectAccessReview. For anyone else: SubjectAccessReview;
when the caller may not create those, LocalSubjectAccessReview in each
namespace (namespace admins usually may), then impersonation (SSAR sent with
``Impersonate-User``, and ``Impersonate-Group`` only where the server would not
derive the subject's groups by itself). One verb and one resource per review,
never ``*``.

A review that could not be made is UNKNOWN, never ALLOWED. Only review objects
are created (they are not stored); the only other calls are GETs of the
namespaces and the service account, to warn when they do not exist.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from skycheck import identity
from skycheck.errors import UndecidedError
from skycheck.kube import Connection, Response, TransportError, status_message
from skycheck.models import (
    Decision,
    Finding,
    Method,
    Requirement,
    Subject,
    namespaces_to_look_up,
)
from skycheck.review import ReviewResult

AUTHZ = "/apis/authorization.k8s.io/v1"
# SelfSubjectReview is GA in 1.28, beta in 1.27 and alpha in 1.26 (behind a feature gate).
SELF_SUBJECT_REVIEW_VERSIONS = ("v1", "v1beta1", "v1alpha1")
# Weakest last: the report names the weakest method any check needed.
_METHOD_ORDER = (Method.SSAR, Method.SAR, Method.LOCAL_SAR, Method.IMPERSONATION)


def resource_attributes(req: Requirement) -> dict[str, str]:
    attrs = {"verb": req.verb, "group": req.group, "resource": req.resource}
    if req.subresource:
        attrs["subresource"] = req.subresource
    if req.name:
        attrs["name"] = req.name
    # The namespace the real request is authorized in (a namespace read by name is its own).
    if req.request_namespace:
        attrs["namespace"] = req.request_namespace
    return attrs


def decide(status: dict[str, Any]) -> tuple[Decision, str, str, bool]:
    """Map an access review's status to (decision, reason, evaluationError, denied).

    ``allowed`` is definitive. Not allowed with an evaluationError means some
    binding could not be evaluated (it might have granted), so the answer is
    unknown. ``denied`` is an explicit deny from an authorizer such as a webhook.
    """
    allowed = bool(status.get("allowed"))
    denied = bool(status.get("denied"))
    reason = " ".join(str(status.get("reason", "")).split())
    error = " ".join(str(status.get("evaluationError", "")).split())
    if allowed:
        return Decision.ALLOWED, reason, error, False
    if denied:
        return Decision.DENIED, reason or "explicitly denied by an authorizer", error, True
    if error:
        return Decision.UNKNOWN, f"evaluation error: {error}", error, False
    return Decision.DENIED, reason or "no RBAC rule grants it", error, False


class _NotAllowedToAsk(Exception):
    """The caller may not use this review method (HTTP 401/403/404 on the review)."""

    def __init__(self, what: str, status: int) -> None:
        super().__init__(what)
        self.what = what
        self.status = status


@dataclass(frozen=True, slots=True)
class _Answer:
    finding: Finding
    method: Method | None  # None: no method answered (every one was refused)
    refused: bool = False  # no review method was allowed for this check


class LiveReviewer:
    """Reviews requirements for a subject on one API server connection."""

    mode = "live"

    def __init__(self, conn: Connection, *, self_check: bool, lookup_account: bool = True) -> None:
        self.conn = conn
        self.self_check = self_check
        # Off for SkyPilot's own account, which it creates at the first launch.
        self.lookup_account = lookup_account
        self._lock = threading.Lock()
        self._unavailable: dict[tuple[Method, str], str] = {}
        # Set once the server has answered anything: after that a transport error is a
        # fault in the middle of a run, and the findings made so far are kept (as unknown
        # for the rest) instead of being thrown away by a one-line error.
        self._reached = False
        self._asked = False  # review() has been called before
        self._notes: list[str] = []  # warnings from whoami, reported with the review

    # -- identity ---------------------------------------------------------------------------

    def whoami(self) -> tuple[str, tuple[str, ...], str]:
        """The caller's username, groups and uid via SelfSubjectReview.

        Servers before 1.28 may serve only v1beta1 or v1alpha1, or none (404 for each):
        then the username is "" (unknown), and the caller is still checked with
        SelfSubjectAccessReview, which needs no name.
        """
        for version in SELF_SUBJECT_REVIEW_VERSIONS:
            body = {"apiVersion": f"authentication.k8s.io/{version}", "kind": "SelfSubjectReview"}
            path = f"/apis/authentication.k8s.io/{version}/selfsubjectreviews"
            resp = self._post_or_raise(path, body)
            if resp.status != 404:
                break
        else:
            self._notes.append(
                "the API server serves no SelfSubjectReview (authentication.k8s.io "
                f"{', '.join(SELF_SUBJECT_REVIEW_VERSIONS)}; Kubernetes before 1.28 may not): "
                "the caller's username is unknown, so no fix can name it; the checks still "
                "ask as the caller (SelfSubjectAccessReview)"
            )
            return "", (), ""
        if resp.status == 401:
            raise UndecidedError(
                "cannot tell who the caller is: the API server answered 401 Unauthorized "
                "(expired or revoked token, or a client certificate it does not trust)"
            )
        if resp.status != 201:
            raise UndecidedError(
                f"cannot tell who the caller is (SelfSubjectReview: {status_message(resp)})"
            )
        status = resp.body.get("status")
        info = status.get("userInfo") if isinstance(status, dict) else None
        if not isinstance(info, dict) or not info.get("username"):
            raise UndecidedError("cannot tell who the caller is (SelfSubjectReview: no username)")
        return (
            str(info.get("username", "")),
            tuple(info.get("groups") or ()),
            str(info.get("uid", "")),
        )

    # -- reviews ----------------------------------------------------------------------------

    def review(self, subject: Subject, requirements: Sequence[Requirement]) -> ReviewResult:
        if not requirements:
            return ReviewResult((), Method.SSAR if self.self_check else Method.SAR)
        # The first review runs alone: it finds out which method the caller may use
        # (and whether the server answers at all) before everything else is sent.
        first = self._review_one(subject, requirements[0], probe=True)
        if first.refused and "401" in first.finding.reason:
            raise UndecidedError(
                "the API server answered 401 Unauthorized: it does not accept the kubeconfig's "
                "credentials (expired or revoked token?)"
            )
        if first.refused and self.self_check:
            raise UndecidedError(f"not allowed to ask the API server: {first.finding.reason}")
        # Features can share a permission (persistentvolumeclaims in high-availability and
        # volumes): ask the server once per distinct question and share the answer.
        keys = [_question(r) for r in requirements]
        todo = {k: r for k, r in zip(keys[1:], requirements[1:], strict=True) if k != keys[0]}
        asked: dict[tuple[str, ...], _Answer] = {keys[0]: first}
        if todo:
            got = self.conn.map(lambda r: self._review_one(subject, r), todo.values())
            asked.update(zip(todo, got, strict=True))
        answers = [
            a
            if a.finding.requirement is r
            else replace(a, finding=replace(a.finding, requirement=r))
            for r, a in ((r, asked[k]) for r, k in zip(requirements, keys, strict=True))
        ]
        # Refused everything on the first call: the caller cannot ask at all, say so in one
        # line. On a later call (the engine's namespace preconditions) keep the report.
        first_call = not self._asked
        self._asked = True
        if all(a.refused for a in answers) and first_call:
            lacking = "; ".join(dict.fromkeys(self._unavailable.values()))
            raise UndecidedError(
                f"not allowed to ask the API server about {subject.username}: the caller "
                f"may not {lacking}",
                hint="grant it create on subjectaccessreviews.authorization.k8s.io, "
                "or run skycheck as that identity",
            )
        used = Counter(
            a.method
            for a in answers
            if a.method is not None and a.finding.decision is not Decision.UNKNOWN
        )
        method = max(used, key=_METHOD_ORDER.index) if used else self._default_method()
        warnings = [*self._notes] + [
            f"the caller may not {what}; used a fallback where one was allowed"
            for (_, _), what in sorted(self._unavailable.items(), key=lambda kv: kv[1])
        ]
        namespaces, forbidden = self._namespaces(requirements, warnings)
        if (
            subject.is_service_account
            and subject.namespace
            and not self.self_check
            and self.lookup_account
        ):
            self._check_service_account(subject, warnings)
        return ReviewResult(
            findings=tuple(a.finding for a in answers),
            method=method,
            warnings=tuple(dict.fromkeys(warnings)),
            namespaces=namespaces,
            namespaces_forbidden=forbidden,
        )

    def _default_method(self) -> Method:
        return Method.SSAR if self.self_check else Method.SAR

    def _chain(self, req: Requirement) -> list[Method]:
        if self.self_check:
            return [Method.SSAR]
        chain = [Method.SAR]
        if req.request_namespace:
            chain.append(Method.LOCAL_SAR)
        chain.append(Method.IMPERSONATION)
        return chain

    def _review_one(self, subject: Subject, req: Requirement, probe: bool = False) -> _Answer:
        refused: list[str] = []
        for method in self._chain(req):
            key = (method, req.request_namespace if method is Method.LOCAL_SAR else "")
            with self._lock:
                if key in self._unavailable:
                    refused.append(self._unavailable[key])
                    continue
            try:
                status = self._ask(method, subject, req)
            except _NotAllowedToAsk as exc:
                with self._lock:
                    self._unavailable[key] = exc.what
                refused.append(exc.what)
                if exc.status == 401:
                    break
                continue
            except TransportError as exc:
                if probe and not self._reached:
                    raise UndecidedError(
                        f"cannot reach the API server of context {self.conn.context.name} "
                        f"({self.conn.server}): {exc}"
                    ) from None
                return _Answer(Finding(req, Decision.UNKNOWN, f"not checked: {exc}"), method)
            except _ServerError as exc:
                return _Answer(Finding(req, Decision.UNKNOWN, f"not checked: {exc}"), method)
            decision, reason, error, denied = decide(status)
            return _Answer(Finding(req, decision, reason, error, denied), method)
        lacking = "; ".join(dict.fromkeys(refused))
        return _Answer(
            Finding(req, Decision.UNKNOWN, f"not checked: the caller may not {lacking}"),
            None,  # refused by every method: no method decided it
            refused=True,
        )

    def _ask(self, method: Method, subject: Subject, req: Requirement) -> dict[str, Any]:
        attrs = resource_attributes(req)
        headers: list[tuple[str, str]] = []
        if method is Method.SSAR:
            path = f"{AUTHZ}/selfsubjectaccessreviews"
            what = "create selfsubjectaccessreviews.authorization.k8s.io"
            body: dict[str, Any] = {
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attrs},
            }
        elif method is Method.SAR:
            path = f"{AUTHZ}/subjectaccessreviews"
            what = "create subjectaccessreviews.authorization.k8s.io (cluster-wide)"
            spec: dict[str, Any] = {
                "resourceAttributes": attrs,
                "user": subject.username,
                "groups": list(subject.groups),
            }
            if subject.uid:
                spec["uid"] = subject.uid
            body = {"kind": "SubjectAccessReview", "spec": spec}
        elif method is Method.LOCAL_SAR:
            ns = req.request_namespace
            path = f"{AUTHZ}/namespaces/{ns}/localsubjectaccessreviews"
            what = f"create localsubjectaccessreviews.authorization.k8s.io in namespace {ns}"
            body = {
                "kind": "LocalSubjectAccessReview",
                "metadata": {"namespace": ns},
                "spec": {
                    "resourceAttributes": attrs,
                    "user": subject.username,
                    "groups": list(subject.groups),
                },
            }
        else:
            path = f"{AUTHZ}/selfsubjectaccessreviews"
            kind = "serviceaccounts" if subject.is_service_account else "users"
            what = f"impersonate {kind} ({subject.username})"
            headers.append(("Impersonate-User", subject.username))
            # Groups only where the server's own differ from the subject's: a group header
            # needs "impersonate groups", which ``kubectl --as`` does not need either.
            groups = identity.impersonation_groups(subject)
            if groups:
                what += f" and groups ({', '.join(groups)})"
            headers += [("Impersonate-Group", g) for g in groups]
            body = {"kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes": attrs}}
        body["apiVersion"] = "authorization.k8s.io/v1"
        resp = self.conn.request("POST", path, body, headers)
        self._reached = True
        if resp.status == 201:
            answer = resp.body.get("status")
            if resp.body.get("kind") != body["kind"] or not isinstance(answer, dict):
                # Not a review (a proxy's page, a truncated body): no answer, not a "no".
                raise _ServerError(f"HTTP 201 without a {body['kind']} status in the body")
            return dict(answer)
        if resp.status == 401:
            raise _NotAllowedToAsk(
                "authenticate: the API server answered 401 Unauthorized "
                "(expired or revoked token?)",
                401,
            )
        if resp.status in (403, 404):
            if method is Method.IMPERSONATION and "impersonate" not in status_message(resp):
                # Impersonation was allowed, but the impersonated user may not ask
                # (system:anonymous may not create SelfSubjectAccessReviews by default).
                what = (
                    f"ask as {subject.username}: the API server refused the impersonated "
                    f"review ({status_message(resp)})"
                )
            raise _NotAllowedToAsk(what, resp.status)
        raise _ServerError(
            f"HTTP {resp.status} after {resp.attempts} attempt(s): {status_message(resp)}"
        )

    # -- existence lookups -------------------------------------------------------------------

    def _post_or_raise(self, path: str, body: dict[str, Any]) -> Response:
        try:
            resp = self.conn.request("POST", path, body)
            self._reached = True
            return resp
        except TransportError as exc:
            raise UndecidedError(
                f"cannot reach the API server of context {self.conn.context.name} "
                f"({self.conn.server}): {exc}"
            ) from None

    def _exists(self, path: str) -> tuple[bool | None, str]:
        try:
            resp = self.conn.request("GET", path)
        except TransportError as exc:
            return None, str(exc)
        if resp.status == 200:
            return True, ""
        if resp.status == 404:
            return False, ""
        return None, f"HTTP {resp.status}"

    def _namespaces(
        self, requirements: Sequence[Requirement], warnings: list[str]
    ) -> tuple[tuple[tuple[str, bool | None], ...], tuple[str, ...]]:
        """(namespace -> exists or None, the namespaces the caller may not read)."""
        names = namespaces_to_look_up(requirements)
        found = self.conn.map(lambda ns: self._exists(f"/api/v1/namespaces/{ns}"), names)
        out = []
        forbidden = []
        for ns, (exists, why) in zip(names, found, strict=True):
            if exists is None and why == "HTTP 403":
                # A namespace-scoped identity may not get namespaces: that is no sign
                # that one is missing, and reviews answer for it either way.
                forbidden.append(ns)
                warnings.append(
                    f"cannot tell whether namespace {ns} exists: the caller may not get "
                    "namespaces (HTTP 403); its checks were asked as usual"
                )
            elif exists is None:
                warnings.append(f"cannot tell whether namespace {ns} exists ({why})")
            out.append((ns, exists))
        return tuple(out), tuple(forbidden)

    def _check_service_account(self, subject: Subject, warnings: list[str]) -> None:
        exists, why = self._exists(
            f"/api/v1/namespaces/{subject.namespace}/serviceaccounts/{subject.name}"
        )
        if exists is False:
            warnings.append(
                f"service account {subject.name} does not exist in namespace "
                f"{subject.namespace}: the checks answer for its name, but pods cannot run "
                "as it until it is created"
            )
        elif exists is None:
            warnings.append(
                f"cannot tell whether service account {subject.namespace}/{subject.name} "
                f"exists ({why})"
            )


def _question(req: Requirement) -> tuple[str, ...]:
    """What one access review asks; requirements with equal questions share an answer."""
    return (req.verb, req.group, req.resource, req.subresource, req.request_namespace, req.name)


class _ServerError(Exception):
    """The API server kept failing (5xx/429 after retries) or answered oddly."""
