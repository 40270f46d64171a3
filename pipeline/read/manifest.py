"""Reading manifest files (YAML or CSV) into plain data that remembers where each value came from.

No rules live here: this module only parses and records positions, so that every later check
can say "file:line". YAML is read with YAML 1.2 scalars: `ratio: 16:9` stays the text "16:9"
(YAML 1.1 would read it as the base-60 number 969) and `no` stays a word, not false.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError, ManifestError, Problem
from .schema import field_path

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
# Values that YAML aliases may add to a document by repeating anchored ones. Far above any
# real use (an anchored job template repeated in a thousand jobs), far below an alias bomb:
# 568 bytes of nine levels of nine aliases expand to 387 million values.
MAX_ALIAS_EXPANSION = 100_000
CSV_LIST_SEPARATOR = "|"

JsonPath = tuple[Any, ...]


@dataclass
class CsvRows:
    """The rows of a jobs CSV as text cells: each row holds a cell (None when empty) for each of
    the header's kept `columns`, and `lines` each row's first line in the file. Tuples, not
    dicts: a 100,000-row CSV would take twice the memory."""

    columns: list[str]
    rows: list[tuple[str | None, ...]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)


@dataclass
class Document:
    """A parsed manifest: the data, and the line of every key and list item in it."""

    path: Path
    data: dict[str, Any]
    lines: dict[JsonPath, int] = field(default_factory=dict)
    csv_jobs: CsvRows | None = None  # a CSV manifest's rows, or a YAML manifest's jobs_csv
    csv_path: Path | None = None
    problems: list[Problem] = field(default_factory=list)  # found reading, not stopping it: bad CSV rows

    @property
    def folder(self) -> Path:
        return self.path.parent

    def where(self, path: JsonPath = ()) -> str:
        """'file:line' of the nearest recorded position at or above `path`."""
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return f"{display_path(self.path)}:{self.lines.get(path, 1)}"


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_manifest(path: Path) -> Document:
    """Parse a .yaml/.yml/.csv manifest. Raises InputError for unreadable or malformed files."""
    text = _read_text(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows, problems = parse_csv(text, path)
        return Document(path=path, data={}, csv_jobs=rows, csv_path=path, problems=problems)
    if suffix not in (".yaml", ".yml"):
        raise InputError(f"{display_path(path)}: not a manifest; expected a .yaml, .yml or .csv file")
    return parse_yaml(text, path)


def _read_text(path: Path) -> str:
    shown = display_path(path)
    try:
        if path.is_dir():
            raise InputError(f"{shown}: is a folder; expected a manifest file")
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise InputError(f"{shown}: {size:,} bytes is too large for a manifest (64 MiB at most)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{shown}: no such file") from None
    except PermissionError:
        raise InputError(f"{shown}: permission denied") from None
    except OSError as error:
        raise InputError(f"{shown}: cannot read ({error.strerror})") from None
    if b"\x00" in raw:
        raise InputError(f"{shown}: is a binary file; expected YAML or CSV text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{shown}: not UTF-8 text (byte {error.start})") from None


# --- YAML ----------------------------------------------------------------------------------


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars (no base-60 numbers, no yes/no booleans)."""


# Drop YAML 1.1's bool/int/float/timestamp resolvers and put back YAML 1.2 core ones below
# (YAML 1.2 has no timestamps: `2024-05-01` in a prompt or a tag stays text).
_YAML_1_1_SCALARS = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
}
# What JSON can hold; anything else (!!binary, !!set, !!timestamp...) is refused with its line.
_JSON_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")}
_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML_1_1_SCALARS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _construct_yaml12_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 0) if text.startswith("0x") else int(text, 10)


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_yaml12_int)


def parse_yaml(text: str, path: Path) -> Document:
    shown = display_path(path)
    try:
        loader = _Yaml12Loader(text)  # the reader rejects control characters here, already
    except yaml.YAMLError as error:
        raise InputError(f"{shown}: YAML syntax error: {_first_line(error)}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError(f"{shown}: the manifest is empty; expected a mapping with 'jobs'")
        _refuse_alias_bombs(node, shown)
        lines: dict[JsonPath, int] = {(): node.start_mark.line + 1}
        problems: list[Problem] = []
        _record_lines(node, (), lines, problems, shown)
        if problems:
            raise ManifestError(problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        reason = error.problem or error.context or "cannot be parsed"
        raise InputError(f"{shown}:{line}: YAML syntax error: {reason}") from None
    except yaml.YAMLError as error:
        raise InputError(f"{shown}: YAML syntax error: {_first_line(error)}") from None
    except RecursionError:
        raise InputError(f"{shown}: YAML nested too deeply") from None
    finally:
        loader.dispose()
    if problems:
        raise ManifestError(problems)
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        raise InputError(f"{shown}:1: the manifest is a {kind}; expected a mapping with 'jobs'")
    return Document(path=path, data=data, lines=lines)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _refuse_alias_bombs(root: yaml.Node, shown: str) -> None:
    """Refuse a node graph whose aliases expand past MAX_ALIAS_EXPANSION values, or into itself.

    The composer shares one node for an anchor and all its aliases, so the graph is as small
    as the text; only walking or building it expands the aliases. Each node's expanded size is
    counted once here (an iterative post-order walk, memoised by node), before anything else
    walks the graph. The value reported is the first, in that order, whose expansion alone
    passes the limit: for a bomb, the level where it goes off.
    """
    sizes: dict[int, int] = {}
    entered: set[int] = set()  # the nodes on the path being walked
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        line = node.start_mark.line + 1
        children = _child_nodes(node)
        if finished:
            entered.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[key] - len(sizes) > MAX_ALIAS_EXPANSION:
                raise InputError(
                    f"{shown}:{line}: YAML aliases expand this value past {MAX_ALIAS_EXPANSION:,} "
                    "values; expected fewer aliases (write the values out)"
                )
        elif key in entered:
            raise InputError(
                f"{shown}:{line}: a YAML alias refers to a value that contains it; "
                "expected aliases of values that end before them"
            )
        elif key not in sizes:
            entered.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children)


def _child_nodes(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _record_lines(node: yaml.Node, path: JsonPath, lines: dict, problems: list[Problem], shown: str) -> None:
    """Record the line of every key and item; collect duplicate keys and non-JSON values."""
    if node.tag not in _JSON_TAGS:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        problems.append(
            Problem(
                f"{shown}:{node.start_mark.line + 1}",
                field_path(path),
                f"YAML tag {tag} is not allowed; "
                "expected plain text, numbers, true/false, lists and mappings",
            )
        )
        return
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                where = f"{shown}:{line}"
                problems.append(Problem(where, field_path((*path, key)), "duplicate key"))
            seen.add(key)
            lines[(*path, key)] = line
            _record_lines(value_node, (*path, key), lines, problems, shown)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _record_lines(item, (*path, index), lines, problems, shown)


# --- CSV -----------------------------------------------------------------------------------


def parse_csv(text: str, path: Path) -> tuple[CsvRows, list[Problem]]:
    """Rows of a jobs CSV as text cells, each with its first line in the file, and the problems
    of the header and rows that could not be read.

    Empty cells are None (meaning "use the default"); a short row's missing cells too. A row
    with too many cells is reported and left out, so the other rows are still checked; so is a
    column without a name, or named twice (its first occurrence is kept).
    """
    shown = display_path(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1  # where the row being read starts, for errors that surface lines later
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise InputError(f"{shown}:1: the CSV has no header row; expected field names")
        header = [cell.strip() for cell in header]
        _refuse_other_delimiters(header, shown)
        problems = _header_problems(header, shown)
        kept = [i for i, name in enumerate(header) if name and name not in header[:i]]
        table = CsvRows([header[i] for i in kept])
        line = reader.line_num + 1
        for cells in reader:
            if any(cell.strip() for cell in cells):
                if len(cells) > len(header):
                    problems.append(
                        Problem(
                            f"{shown}:{line}",
                            "",
                            f"row has {len(cells)} cells but the header names {len(header)}; "
                            "quote a cell that contains a comma",
                        )
                    )
                else:
                    # A short row leaves its last cells empty, as hand-written CSV often does.
                    cells = cells + [""] * (len(header) - len(cells))
                    table.rows.append(tuple(cells[i] if cells[i].strip() else None for i in kept))
                    table.lines.append(line)
            line = reader.line_num + 1
    except csv.Error as error:
        raise InputError(f"{shown}:{line}: CSV syntax error: {error}") from None
    return table, problems


_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs"}


def _refuse_other_delimiters(header: list[str], shown: str) -> None:
    """A header cell holding ';' or a tab is a file saved with another delimiter.

    Refused rather than guessed: a prompt may contain either character, so a wrong guess
    would split prompts into other requests without a word.
    """
    for delimiter, name in _OTHER_DELIMITERS.items():
        if any(delimiter in cell for cell in header):
            raise InputError(
                f"{shown}:1: the columns are separated by {name}; expected commas "
                "(save the file as comma-separated CSV)"
            )


def _header_problems(header: list[str], shown: str) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for index, name in enumerate(header, start=1):
        if not name:
            problems.append(Problem(f"{shown}:1", "", f"column {index} has no name in the header"))
        elif name in seen:
            problems.append(Problem(f"{shown}:1", name, "column appears twice in the header"))
        seen.add(name)
    return problems
