"""The attributes the API server authorizes a request with.

A check names what SkyPilot does ("get namespace skypilot-system"); the API server authorizes
the HTTP request that becomes, with the attributes its RequestInfo resolver derives from the
URL (k8s.io/apiserver pkg/endpoints/request/requestinfo.go, ``NewRequestInfo``), not with
the attributes ``kubectl auth can-i`` would send. The two differ in one place that matters
to RBAC: a path ``/api/v1/namespaces/NAME[/status|/finalize]`` sets the request's namespace
to NAME (``if currentParts[0] == "namespaces" { requestInfo.Namespace = currentParts[1] }``),
so reading, updating, patching or deleting a namespace by name is authorized *in that
namespace*, and a RoleBinding there counts. Creating or listing namespaces has no name in
its path and stays cluster-scoped. docs/concepts.md lists the other kinds of checks.
"""

from __future__ import annotations

# Verbs whose request names the namespace in its path (GET/PUT/PATCH/DELETE .../namespaces/X).
# ``watch`` and ``list`` of one namespace go to the collection (``?fieldSelector=metadata.name=X``),
# whose namespace is "".
_NAMED_NAMESPACE_VERBS = frozenset({"get", "update", "patch", "delete"})
# requestinfo.go ``namespaceSubresources``: the parts after /namespaces/X that still mean the
# Namespace object itself; any other part would name a namespaced resource instead.
_NAMESPACE_SUBRESOURCES = frozenset({"", "status", "finalize"})


def reads_namespace_by_name(
    verb: str, group: str, resource: str, subresource: str, name: str
) -> bool:
    """True when the request is ``/api/v1/namespaces/NAME...``: authorized in namespace NAME."""
    return (
        group == ""
        and resource == "namespaces"
        and bool(name)
        and verb in _NAMED_NAMESPACE_VERBS
        and subresource in _NAMESPACE_SUBRESOURCES
    )


def request_namespace(
    verb: str, group: str, resource: str, subresource: str, namespace: str, name: str
) -> str:
    """The namespace the API server authorizes this request in ("" = cluster scope)."""
    if reads_namespace_by_name(verb, group, resource, subresource, name):
        return name
    return namespace
