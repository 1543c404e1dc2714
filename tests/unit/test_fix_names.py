"""Fix object names are unambiguous per identity, and valid object names.

``kubectl auth reconcile`` merges the subjects of bindings that share a name, so two
identities with one name would each get the other's grants (shown on the real apiserver in
tests/integration/test_fix_names_live.py).
"""

from __future__ import annotations

import re

import pytest

from skycheck.fixit import NAME_MAX, object_name
from skycheck.models import Subject
from skycheck.names import is_dns_subdomain

SUBJECTS = [
    Subject.service_account("sky-sa", "team"),
    Subject.service_account("sky", "sa-team"),
    Subject.service_account("sky.sa", "team"),
    Subject.service_account("sky", "sa"),
    Subject.service_account("a" * 253, "b" * 63),
    Subject.service_account("a" * 253, "c" * 63),
    Subject.user("alice@corp.com"),
    Subject.user("Alice-corp.com"),
    Subject.user("alice-corp-com"),
    Subject.user("ALICE@corp.com"),
    Subject.user("sky-sa.team"),
    Subject.user("x" * 400),
    Subject.user("x" * 401),
    Subject.user("日本"),
    Subject.user("中国"),
    Subject.user("system:serviceaccount:team:sky-sa"),  # that account
]


def test_the_reported_collisions_are_gone() -> None:
    assert object_name(Subject.service_account("sky-sa", "team")) == "skycheck-sky-sa.team"
    assert object_name(Subject.service_account("sky", "sa-team")) == "skycheck-sky.sa-team"
    assert object_name(Subject.user("alice@corp.com")) != object_name(
        Subject.user("Alice-corp.com")
    )


def test_every_distinct_identity_gets_a_distinct_valid_name() -> None:
    names = {s.username: object_name(s) for s in SUBJECTS}
    assert len(set(names.values())) == len(names)
    for name in names.values():
        assert len(name) <= NAME_MAX and is_dns_subdomain(name), name


@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: s.username[:30])
def test_names_are_deterministic(subject: Subject) -> None:
    assert object_name(subject) == object_name(subject)
    assert re.fullmatch(r"skycheck-[a-z0-9.-]+", object_name(subject))


def test_service_account_names_split_back_at_the_last_dot() -> None:
    sa = Subject.service_account("my.sky.sa", "ml")
    rest = object_name(sa).removeprefix("skycheck-")
    name, _, namespace = rest.rpartition(".")
    assert (name, namespace) == ("my.sky.sa", "ml")
