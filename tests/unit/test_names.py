"""The shared name rules: one spelling of service-account usernames and DNS-1123 names."""

from __future__ import annotations

import pytest

from skycheck import identity, models, names, rbac


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("system:serviceaccount:team:sky-sa", ("team", "sky-sa")),
        ("system:serviceaccount:team:", None),
        ("system:serviceaccount::sky-sa", None),
        ("system:serviceaccount:a:b:c", None),
        ("system:serviceaccounts:team", None),
        ("alice", None),
    ],
)
def test_split_sa_username(username: str, expected: tuple[str, str] | None) -> None:
    assert names.split_sa_username(username) == expected


def test_every_module_agrees_on_service_account_usernames() -> None:
    subject = models.Subject.user("system:serviceaccount:team:sky-sa")
    assert subject.is_service_account
    assert (subject.namespace, subject.name) == ("team", "sky-sa")
    assert identity.split_service_account(subject.username) == ("team", "sky-sa")
    assert rbac.describe_user(subject.username) == "ServiceAccount team/sky-sa"
    assert names.sa_username("team", "sky-sa") == subject.username


@pytest.mark.parametrize(
    ("text", "label", "subdomain"),
    [
        ("team", True, True),
        ("a.b", False, True),
        ("A", False, False),
        ("-a", False, False),
        ("a" * 63, True, True),
        ("a" * 64, False, True),
        ("a" * 254, False, False),
    ],
)
def test_dns_names(text: str, label: bool, subdomain: bool) -> None:
    assert names.is_dns_label(text) is label
    assert names.is_dns_subdomain(text) is subdomain
