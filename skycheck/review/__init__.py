"""Reviewers turn Requirements into Findings for one Subject.

Two backends share one small protocol: ``review.live`` asks a kube-apiserver
(SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview or
impersonation) and ``review.offline`` evaluates RBAC manifests with
``skycheck.rbac``. The engine neither knows nor cares which one it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from skycheck.models import Finding, Method, Requirement, Subject


@dataclass(frozen=True, slots=True)
class ReviewResult:
    """What a reviewer found: one finding per requirement, in the same order."""

    findings: tuple[Finding, ...]
    method: Method
    warnings: tuple[str, ...] = ()
    # Namespace name -> exists? (None: could not tell). Filled for the namespaces
    # the requirements mention, so the engine can flag a missing skypilot-system.
    namespaces: tuple[tuple[str, bool | None], ...] = ()
    # Namespaces whose lookup the API server refused (403): the identity may not read
    # them, which is normal for a namespace-scoped identity and says nothing about
    # whether they exist.
    namespaces_forbidden: tuple[str, ...] = ()


class Reviewer(Protocol):
    """Decides every requirement for one subject."""

    mode: str  # "live" | "offline"

    def review(self, subject: Subject, requirements: Sequence[Requirement]) -> ReviewResult: ...
