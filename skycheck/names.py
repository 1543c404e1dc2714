"""Kubernetes name rules skycheck needs in several places, spelled once.

- DNS-1123 labels (namespaces) and subdomains (service accounts, most object names):
  ``IsDNS1123Label`` and ``IsDNS1123Subdomain`` in apimachinery/pkg/util/validation.
- Service-account usernames, ``system:serviceaccount:NS:NAME``: ``MakeUsername`` and
  ``SplitUsername`` in staging/src/k8s.io/apiserver/pkg/authentication/serviceaccount.
"""

from __future__ import annotations

import re

SA_PREFIX = "system:serviceaccount:"

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_MAX = 63
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_SUBDOMAIN_MAX = 253


def is_dns_label(text: str) -> bool:
    """A DNS-1123 label: what a namespace name must be."""
    return len(text) <= DNS_LABEL_MAX and DNS_LABEL.match(text) is not None


def is_dns_subdomain(text: str) -> bool:
    """A DNS-1123 subdomain: what a service account name must be."""
    return len(text) <= DNS_SUBDOMAIN_MAX and DNS_SUBDOMAIN.match(text) is not None


def sa_username(namespace: str, name: str) -> str:
    """The username a service account's token authenticates as."""
    return f"{SA_PREFIX}{namespace}:{name}"


def split_sa_username(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a service-account username, or None for any other username.

    Two non-empty parts after the prefix, as ``SplitUsername`` requires (it also validates
    them as names; callers that need that check the parts themselves).
    """
    if not username.startswith(SA_PREFIX):
        return None
    parts = username[len(SA_PREFIX) :].split(":")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]
