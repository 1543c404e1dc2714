"""Who is checked: flags to a Subject.

``--sa NAME -n NS`` is the service account's token identity, groups included,
because a SubjectAccessReview takes user and groups exactly as given: the API
server adds no service-account groups and no ``system:authenticated``
(pkg/registry/authorization/subjectaccessreview/rest.go), and without them
grants to ``system:serviceaccounts:NS`` would be missed.
"""

from __future__ import annotations

from skycheck.errors import UsageError
from skycheck.models import ALL_SERVICE_ACCOUNTS, AUTHENTICATED, Subject
from skycheck.names import SA_PREFIX, is_dns_label, is_dns_subdomain, split_sa_username

ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"


def validate_namespace(namespace: str) -> str:
    if not is_dns_label(namespace):
        raise UsageError(f"invalid namespace {namespace!r}: must be a DNS-1123 label")
    return namespace


def split_service_account(text: str) -> tuple[str | None, str]:
    """``NAME``, ``NS:NAME`` or ``system:serviceaccount:NS:NAME`` -> (namespace or None, name)."""
    if text.startswith(SA_PREFIX):
        parts = split_sa_username(text)
        if parts is None:
            raise UsageError(f"invalid service account username {text!r}")
        return parts
    if ":" in text:
        namespace, _, name = text.partition(":")
        return namespace, name
    return None, text


def service_account(name: str, namespace: str) -> Subject:
    """The subject for ``--sa NAME -n NS``; accepts ``NS:NAME`` or the full username too."""
    written, name = split_service_account(name)
    namespace = written if written is not None else namespace
    if not is_dns_subdomain(name):
        raise UsageError(f"invalid service account name {name!r}: must be a DNS-1123 subdomain")
    return Subject.service_account(name, validate_namespace(namespace))


def user(username: str, groups: tuple[str, ...]) -> Subject:
    """The subject for ``--as USER [--as-group G ...]``, with the groups its requests carry.

    Authenticated users always carry ``system:authenticated``; an anonymous request
    carries ``system:unauthenticated`` instead (the anonymous authenticator,
    k8s.io/apiserver/pkg/authentication/request/anonymous/anonymous.go). Add the
    one that applies so a review asks about the identity as the API server sees it.
    """
    if not username.strip():
        raise UsageError("--as needs a non-empty user name")
    if username == ANONYMOUS or UNAUTHENTICATED in groups:
        merged = tuple(dict.fromkeys((*groups, UNAUTHENTICATED)))
    else:
        merged = tuple(dict.fromkeys((*groups, AUTHENTICATED)))
    return Subject.user(username, merged)


def implied_groups(username: str) -> tuple[str, ...]:
    """The groups the API server gives a user impersonated without Impersonate-Group.

    k8s.io/apiserver/pkg/endpoints/filters/impersonation/impersonation.go: a
    service-account name gets that account's groups; ``system:anonymous`` gets
    ``system:unauthenticated``, every other user ``system:authenticated``.
    """
    if username == ANONYMOUS:
        return (UNAUTHENTICATED,)
    account = split_sa_username(username)
    if account:
        return (ALL_SERVICE_ACCOUNTS, f"{ALL_SERVICE_ACCOUNTS}:{account[0]}", AUTHENTICATED)
    return (AUTHENTICATED,)


def impersonation_groups(subject: Subject) -> tuple[str, ...]:
    """The Impersonate-Group headers to send for ``subject``: none when the server's own
    groups are the subject's, which spares the caller the right to impersonate groups
    (``kubectl --as USER`` sends no group either)."""
    if set(subject.groups) == set(implied_groups(subject.username)):
        return ()
    return subject.groups


UNKNOWN_CALLER = Subject(kind="User", name="(unknown)", namespace=None, username="")


def from_whoami(username: str, groups: tuple[str, ...], uid: str = "") -> Subject:
    """The caller as SelfSubjectReview reported it (groups exactly as returned).

    An empty username means the server could not say (no SelfSubjectReview API):
    the subject then says it is unknown rather than naming anyone.
    """
    if not username:
        return UNKNOWN_CALLER
    return Subject.user(username, tuple(groups), uid)
