"""Code blocks of the hand-written docs, and the commands in them.

The conventions the docs follow (and tests/docs/test_docs_examples.py enforces):

- ``console`` blocks are terminal transcripts. A command line starts with ``$ ``; a line
  ending in ``\\`` continues on the next one. Every other line is the output of the
  command above it. When output is shown, the command must print exactly those lines
  (stdout and stderr together, as a terminal shows them); a line that is just ``...``
  stands for any number of lines. Blank lines around a command's output are ignored.
  A command shown without output may print anything, except ``CMD; echo $?``, whose
  transcript is always complete.
- The exit code a command is claimed to return is written in its trailing comment, as
  ``exit N`` (alternatives: ``exit 0 or 1``), e.g. ``$ skycheck --sa sky-sa -n default
  # exit 0``. ``$ CMD; echo $?`` followed by output whose last line is a number, or a
  separate ``$ echo $?`` line followed by the number, claims it too. Every ``skycheck``
  command needs a claim; other commands are claimed to exit 0 unless they say otherwise.
- ``bash``, ``shell`` and ``sh`` blocks are scripts, run as a whole; they must exit 0,
  or N when their first line is a comment with ``exit N``.
- A ``yaml`` block whose first line is a comment naming a file (``# config.yaml`` or
  ``# skycheck-job.yaml: ...``) is that file: the examples can use it by that name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# Generated from code by scripts/gen_docs.py: reference pages, not examples.
GENERATED = frozenset({"catalogue.md", "cli.md"})
RUNNABLE = frozenset({"console", "bash", "shell", "sh"})
SCRIPT_LANGS = frozenset({"bash", "shell", "sh"})

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
_CLAIM = re.compile(r"\bexit\s+(\d+(?:\s*(?:,|/|or)\s*\d+)*)")
_ECHO_STATUS = re.compile(r";\s*echo \$\?\s*$")
_FILE_HEADER = re.compile(r"^#\s*(?P<name>[\w./-]+\.(?:ya?ml|json))\s*(?::|$)")
_SKYCHECK = re.compile(r"(?:^|[\s;&|(])skycheck(?=\s|$)")


def doc_pages() -> list[Path]:
    """README.md and every hand-written page under docs/, in a stable order."""
    pages = sorted(p for p in DOCS.glob("*.md") if p.name not in GENERATED)
    return [ROOT / "README.md", *pages]


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced code block of a Markdown file (fences of 3+ backticks or tildes)."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        fence, indent = opened.group("fence"), len(opened.group("indent"))
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            line = lines[j]
            body.append(line[indent:] if line[:indent].strip() == "" else line)
            j += 1
        out.append(Block(path, i + 1, opened.group("info").lower(), "\n".join(body) + "\n"))
        i = j + 1
    return out


def all_blocks() -> list[Block]:
    return [b for page in doc_pages() for b in blocks(page)]


def comment_of(line: str) -> str:
    """The trailing shell comment of one line ("" if none), ignoring ``#`` inside quotes."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[i + 1 :]
    return ""


def claimed_codes(comment: str) -> frozenset[int] | None:
    found = _CLAIM.search(comment)
    if not found:
        return None
    return frozenset(int(n) for n in re.findall(r"\d+", found.group(1)))


def mentions_skycheck(command: str) -> bool:
    return bool(_SKYCHECK.search(command))


@dataclass
class Command:
    block: Block
    line: int  # 1-based line in the file
    text: str  # as run by bash (continuation lines included)
    claim: frozenset[int] | None = None
    output: list[str] = field(default_factory=list)  # documented output, "..." = any lines
    echo_status: bool = False  # documented as "CMD; echo $?": the status is printed last

    @property
    def output_shown(self) -> bool:
        """Whether the docs show this command's output (all of it, or with ``...``).

        With ``; echo $?`` the transcript is complete even when only the code is shown.
        """
        return bool(self.output) or self.echo_status

    @property
    def where(self) -> str:
        return f"{self.block.path.relative_to(ROOT)}:{self.line}"

    @property
    def shown(self) -> str:
        return self.text.splitlines()[0]

    def expected(self) -> frozenset[int]:
        if self.claim is not None:
            return self.claim
        return frozenset({0})


def commands(block: Block) -> list[Command]:
    """The commands of a console block, with their claims and documented output."""
    out: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            if out:
                out[-1].output.append(line)
            elif line.strip():
                raise ValueError(f"{block.where}: output before the first command: {line!r}")
            i += 1
            continue
        start = i
        text = [line[2:]]
        while text[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            text.append(lines[i])
        i += 1
        command = "\n".join(text)
        if command.strip() == "echo $?":
            # The status of the command above, printed on the next line.
            if not out or i >= len(lines) or not lines[i].strip().isdigit():
                raise ValueError(f"{block.where}: 'echo $?' needs a command above, a code below")
            out[-1].claim = frozenset({int(lines[i].strip())})
            i += 1
            continue
        comment = comment_of(text[-1])
        code = command[: len(command) - len(comment) - 1] if comment else command
        out.append(
            Command(
                block,
                block.line + 1 + start,
                command,
                claimed_codes(comment),
                echo_status=bool(_ECHO_STATUS.search(code.rstrip())),
            )
        )
    for cmd in out:
        while cmd.output and not cmd.output[-1].strip():
            cmd.output.pop()
        while cmd.output and not cmd.output[0].strip():
            cmd.output.pop(0)
        if cmd.echo_status:
            if not cmd.output or not cmd.output[-1].strip().isdigit():
                raise ValueError(f"{cmd.where}: '; echo $?' but the output ends in no code")
            cmd.claim = frozenset({int(cmd.output.pop().strip())})
            cmd.text = _ECHO_STATUS.sub("", cmd.text.rstrip())
    return out


def script_claim(block: Block) -> frozenset[int]:
    """The exit code a bash/shell block claims: ``# ... exit N`` on its first lines, or 0."""
    for line in block.text.splitlines()[:2]:
        if line.startswith("#") and not line.startswith("#!"):
            claim = claimed_codes(line)
            if claim is not None:
                return claim
    return frozenset({0})


def file_name(block: Block) -> str | None:
    """The file a yaml/json block stands for (``# NAME`` on its first line), if any."""
    first = block.text.split("\n", 1)[0]
    found = _FILE_HEADER.match(first)
    return found.group("name") if found else None


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """``expected`` equals ``actual`` line by line (right-stripped); ``...`` matches any lines."""
    exp = [e.rstrip() for e in expected]
    act = [a.rstrip() for a in actual]
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(exp):
            result = j == len(act)
        elif exp[i].strip() == "...":
            result = any(match(i + 1, k) for k in range(j, len(act) + 1))
        else:
            result = j < len(act) and exp[i] == act[j] and match(i + 1, j + 1)
        memo[(i, j)] = result
        return result

    return match(0, 0)
