"""The end of a run: fix-it manifests on the reports, ``--fix`` files, warnings, the report.

Everything a run writes goes out here, once every report is made: the warnings and
``--explain`` notes to stderr (each once), the rendered report to stdout or
``--output-file``, the fixes to ``--fix`` (through ``outfile.py``), redacted.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

from skycheck import outfile
from skycheck.models import Report
from skycheck.plan import CheckRequest
from skycheck.secrets import redact


def with_fix(report: Report) -> Report:
    """The report with its fix-it manifest (and the warning a fix may need), if any."""
    from skycheck.fixit import fix_manifest, fix_warning

    if not report.subject.bindable:
        return report  # the caller's name is unknown (no SelfSubjectReview): bind no one
    fix = fix_manifest(report)
    warning = fix_warning(report) if fix else None
    warnings = (*report.warnings, warning) if warning else report.warnings
    return replace(report, fix=fix, warnings=warnings)


def write_fix(path: Path, reports: list[Report], per_context: bool) -> None:
    """Write the fixes; with several contexts, one file per context.

    Fix objects are named after the subject, so two contexts' fixes in one file
    would overwrite each other when applied; two identities' fixes in one
    context do not, and share that context's file.
    """
    from skycheck.fixit import fix_path_for

    by_file: dict[str, list[str]] = {}
    for report in reports:
        name = fix_path_for(str(path), report.context if per_context else None)
        texts = by_file.setdefault(name, [])
        if report.fix:
            texts.append(report.fix)
    for name, texts in by_file.items():
        target = Path(name)
        if texts:
            outfile.write_text(target, "---\n".join(texts), "--fix file")
        elif os.path.lexists(target):
            # Nothing to fix. The file may be anyone's: never delete it, say it is not ours.
            sys.stderr.write(
                f"skycheck: note: nothing is missing, so no fix was written; "
                f"{redact(str(target))} was left as it was (it is not from this run)\n"
            )


def write_least_privilege(path: Path, reports: list[Report]) -> None:
    """Write each report's least-privilege manifest (--least-privilege), one file for all:
    their objects are named after their subjects, so they do not collide."""
    texts = [r.excess.least_privilege for r in reports if r.excess and r.excess.least_privilege]
    if texts:
        outfile.write_text(path, "---\n".join(texts), "--least-privilege file")
    else:
        sys.stderr.write(
            "skycheck: note: no least-privilege manifest was made (nothing is needed, or "
            f"the identity is unknown); {redact(str(path))} was not written\n"
        )


def emit(req: CheckRequest, reports: list[Report], multi: bool, per_context: bool) -> None:
    """Notes, warnings (each once) and the rendered report, redacted, where they go."""
    from skycheck.render import OutputFormat, render

    if req.explain:  # what the SkyPilot setup made skycheck check, and why
        for note in dict.fromkeys(n for report in reports for n in report.notes):
            sys.stderr.write(f"skycheck: derived: {redact(note)}\n")
    # Identities of one context share its warnings: print each once.
    for warning in dict.fromkeys(w for report in reports for w in report.warnings):
        sys.stderr.write(f"skycheck: warning: {redact(warning)}\n")
    color = req.output == "table" and req.output_file is None and sys.stdout.isatty()
    payload = reports if multi else reports[0]
    text = render(
        payload,
        OutputFormat(req.output),
        color=color,
        fix_path=str(req.fix_path) if req.fix_path else None,
        fix_per_context=per_context,
        summary=req.audits_subjects,
    )
    text = redact(text)
    if req.output_file is not None:
        outfile.write_text(req.output_file, text, "--output-file")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
