#!/usr/bin/env python3
"""Build pipeline/catalogue/models.json, the video model catalogue, from the service's public docs.

Run by hand when the docs change, then commit the JSON (see docs/catalogue.md):

    python3 scripts/build_catalogue.py --git-dir /work/.mirror/aimlapi+api-docs/repo
    python3 scripts/build_catalogue.py /path/to/api-docs-checkout            # a work tree
    python3 scripts/build_catalogue.py /tmp/api-docs --commit <sha>          # a `git archive` copy

Input: a checkout of the `aimlapi/api-docs` repository (the folder holding `docs/`), or its git
directory (`--git-dir`, read with `git archive`; blobs missing from a partial clone are skipped
and listed). Only the standard library is used, so the script runs without vidpipe installed.

What it reads, under docs/api-references/:
- video-models/**.json: one OpenAPI file per model (some list several models in `model.enum`).
  Every POST operation's JSON request body is one route: (model id, path). When two files
  document the same route, the one the model's page links wins, else the first path in sorted
  order; the others are listed under `also_in`.
- video-models/**.md: the model pages. Their "valid for the following list of our models" hint
  names ids; a name no OpenAPI file declares, on a page that links the model's file, becomes an
  alias. Their Python `data = {...}` bodies are documented example requests.
- video-models/universal-video-fetch.json: the poll (GET) shape, recorded under `poll`.

What it writes (sorted keys, stable order, one-line descriptions, so a regenerated file's diff
shows only real changes): per model its id, aliases, vendor folder, path, request schema
normalised to JSON Schema Draft 2020-12 (every change listed in `normalisations`), the names it
uses for vidpipe's common fields and their allowed values, what it requires, whether it takes a
seed, its capability (and the reason), and its documented example requests. `doc_issues` lists
what the docs contradict themselves on; nothing is silently dropped.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

FORMAT = 1
UNIVERSAL_PATH = "/v2/video/generations"
VIDEO_DIR = "docs/api-references/video-models"
ENDPOINTS_DIR = "docs/api-references/service-endpoints"
MODEL_DATABASE = "docs/api-references/model-database.md"
FETCH_FILE = "universal-video-fetch.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "pipeline" / "catalogue" / "models.json"
DESCRIPTION_CHARS = 160

# vidpipe's common request fields -> the property names a model's schema may use for it, in order
# of preference. The name recorded is the first one the schema declares (not deprecated first).
COMMON_FIELDS: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt",),
    "ratio": ("aspect_ratio", "ratio"),
    "duration": ("duration",),
    "seed": ("seed",),
    "image_url": ("image_url", "first_frame_image"),
    "last_image_url": ("last_image_url", "tail_image_url"),
    "resolution": ("resolution",),
    "negative_prompt": ("negative_prompt",),
    "generate_audio": ("generate_audio", "generate_audio_switch"),
    "watermark": ("watermark",),
}
ALLOWED_KEYS = ("type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "maxLength")
ALLOWED_KEYS += ("minLength", "default", "format", "minItems", "maxItems")

# Capability from the id: (pattern on the id, capability). First match wins.
ID_CAPABILITIES = (
    (r"extend-video", "video-extension"),
    (r"foley", "video-to-audio"),
    (r"lip-sync|avatar|omnihuman|fabric", "audio-to-video"),
    (r"motion-control|animate-move|animate-replace|act_two", "motion-transfer"),
    (r"first-last|transition", "first-last-frame-to-video"),
    (r"reference-to-video|[-/]r2v", "reference-to-video"),
    (r"video-to-video|[-/]v2v|aleph|vace|switchx", "video-to-video"),
    (r"multi-image|effects", "image-to-video"),
    (r"image-to-video|[-/]i2v", "image-to-video"),
    (r"text-to-video|[-/]t2v", "text-to-video"),
)
# Capability from what the schema requires, when the id says nothing.
REQUIRED_CAPABILITIES = (
    (("video_url", "video_urls"), "video-to-video"),
    (("image_url", "image_urls", "image_list", "first_frame_image"), "image-to-video"),
)


class DocsError(Exception):
    """The docs cannot be read as expected; the message names the file."""


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        if args.git_dir:
            with tempfile.TemporaryDirectory(prefix="api-docs-") as tmp:
                commit, skipped = extract(Path(args.git_dir), Path(tmp))
                catalogue = build(Path(tmp), commit, skipped)
        else:
            root = Path(args.docs)
            catalogue = build(root, args.commit or _work_tree_commit(root), [])
    except DocsError as error:
        print(f"build_catalogue: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps(catalogue), encoding="utf-8")
    print(
        f"wrote {out}: {len(catalogue['models'])} models from {catalogue['source']['commit'][:12]}, "
        f"{out.stat().st_size:,} bytes, {len(catalogue['doc_issues'])} doc issues"
    )
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("docs", nargs="?", help="checkout of aimlapi/api-docs (the folder holding docs/)")
    parser.add_argument("--git-dir", help="read the docs from this git directory (bare clone) instead")
    parser.add_argument("--commit", help="the docs commit, when DOCS is not a git work tree")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"output file (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if bool(args.docs) == bool(args.git_dir):
        parser.error("give a docs checkout or --git-dir, not both")
    return args


_SCALAR = r'(?:"(?:[^"\\\n]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false|null)'
_SCALAR_LIST = re.compile(r"\[\n(?:[ ]*" + _SCALAR + r",\n)*[ ]*" + _SCALAR + r"\n[ ]*\]")


def dumps(catalogue: dict) -> str:
    """The catalogue as committed: sorted keys, one space indent, lists of scalars on one line."""
    text = json.dumps(catalogue, indent=1, sort_keys=True, ensure_ascii=False)

    def one_line(match: re.Match) -> str:
        line = json.dumps(json.loads(match.group(0)), ensure_ascii=False)
        return line if len(line) <= 100 else match.group(0)

    return _SCALAR_LIST.sub(one_line, text) + "\n"


# ---------------------------------------------------------------------------------------------
# Reading the docs


def extract(git_dir: Path, dest: Path, rev: str = "HEAD") -> tuple[str, list[str]]:
    """Write the two docs folders at `rev` of `git_dir` into `dest`; (commit, files skipped)."""
    commit = _git(git_dir, "rev-parse", f"{rev}^{{commit}}").strip()
    listing = _git(git_dir, "ls-tree", "-r", "-z", commit, "--", VIDEO_DIR, ENDPOINTS_DIR, MODEL_DATABASE)
    present, skipped = [], []
    check = "\n".join(entry.split()[2] for entry in listing.split("\0") if entry)
    missing = subprocess.run(
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch-check"],
        input=check,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for entry, status in zip([e for e in listing.split("\0") if e], missing, strict=True):
        path = entry.split("\t", 1)[1]
        (skipped if status.endswith(" missing") else present).append(path)
    skipped = [path.removeprefix(VIDEO_DIR + "/") for path in skipped]
    if not present:
        raise DocsError(f"{git_dir}: no files under {VIDEO_DIR} at {commit[:12]}")
    with tempfile.TemporaryFile() as tar:
        # git archive also complains about unrelated missing blobs of a partial clone: keep quiet
        # unless it fails.
        done = subprocess.run(
            ["git", f"--git-dir={git_dir}", "archive", commit, "--", *present],
            stdout=tar,
            stderr=subprocess.PIPE,
        )
        if done.returncode:
            why = done.stderr.decode(errors="replace").strip()[-200:]
            raise DocsError(f"{git_dir}: git archive failed: {why}")
        tar.seek(0)
        with tarfile.open(fileobj=tar) as archive:
            try:
                archive.extractall(dest, filter="data")
            except TypeError:  # Python before 3.10.12 / 3.11.4: no filter; git archive is trusted
                archive.extractall(dest)
    return commit, sorted(skipped)


def _git(git_dir: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True)
    except FileNotFoundError as error:
        raise DocsError("git is not installed") from error
    if done.returncode:
        raise DocsError(f"{git_dir}: git {args[0]}: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def _work_tree_commit(root: Path) -> str:
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    if done.returncode:
        raise DocsError(f"{root}: not a git work tree; say which docs commit it is with --commit")
    return done.stdout.strip()


def _load_json(path: Path, root: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DocsError(f"{path.relative_to(root)}: not readable JSON ({error})") from error


# ---------------------------------------------------------------------------------------------
# Building


def build(root: Path, commit: str, skipped: list[str]) -> dict:
    """The catalogue for the docs checkout at `root` (commit `commit`)."""
    video = root / VIDEO_DIR
    if not video.is_dir():
        raise DocsError(f"{root}: no {VIDEO_DIR} folder (is this a checkout of aimlapi/api-docs?)")
    issues: list[str] = [f"{path}: in the docs tree but not readable here (skipped)" for path in skipped]
    pages = [_read_page(path, video) for path in sorted(video.rglob("*.md"))]
    routes = _read_routes(video, root, issues)
    models = _choose_routes(routes, pages, issues)
    _attach_aliases(models, pages, issues)
    _attach_examples(models, routes, pages, video, root, issues)
    for entry in models.values():
        entry["pages"] = sorted({p["file"] for p in pages if _page_is_for(p, entry)})
    _check_model_database(root, models, issues)
    return {
        "format": FORMAT,
        "source": {
            "repository": "aimlapi/api-docs",
            "commit": commit,
            "folder": VIDEO_DIR,
            "generator": "scripts/build_catalogue.py",
        },
        "normalisation_rules": NORMALISATION_RULES,
        "common_fields": {name: list(names) for name, names in COMMON_FIELDS.items()},
        "poll": _poll_shape(video, root, issues),
        "models": models,
        "doc_issues": sorted(set(issues)),
    }


NORMALISATION_RULES = [
    "the request schema is the OpenAPI requestBody application/json schema, $schema set to Draft 2020-12",
    "descriptions are cut to their first sentence and at most 160 characters; titles are dropped",
    "OpenAPI nullable: true becomes a 'null' member of type (and of enum, when there is one)",
    "OpenAPI example: v becomes examples: [v]",
    "a default written as a string on an integer, number or boolean field becomes that value when it "
    "parses and is allowed by the field; otherwise it is dropped; both are listed per model",
    "OpenAPI 3.0 boolean exclusiveMinimum/exclusiveMaximum become the Draft 2020-12 numeric form",
    "$ref to #/components/schemas/... is inlined",
    "enum, minimum, maximum and required are never changed",
]


def _read_routes(video: Path, root: Path, issues: list[str]) -> dict[tuple[str, str], list[dict]]:
    """(model id, path) -> every documented request schema for it, one per file."""
    routes: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(video.rglob("*.json")):
        rel = path.relative_to(video).as_posix()
        if rel == FETCH_FILE:
            continue
        spec = _load_json(path, root)
        if not any("post" in operations for operations in spec.get("paths", {}).values()):
            issues.append(f"{rel}: no POST operation (documents no model request)")
        for api_path, operations in sorted(spec.get("paths", {}).items()):
            post = operations.get("post")
            if not post:
                continue
            body = post.get("requestBody", {}).get("content", {}).get("application/json", {})
            raw = body.get("schema")
            if not isinstance(raw, dict):
                issues.append(f"{rel}: POST {api_path} has no JSON request schema")
                continue
            raw = _inline_refs(raw, spec, rel)
            ids = raw.get("properties", {}).get("model", {}).get("enum") or []
            if not ids:
                issues.append(f"{rel}: POST {api_path} declares no model enum")
            for model_id in ids:
                routes.setdefault((model_id, api_path), []).append(
                    {"file": rel, "raw": raw, "samples": post.get("x-codeSamples", [])}
                )
    return routes


def _choose_routes(routes: dict, pages: list[dict], issues: list[str]) -> dict[str, dict]:
    by_model: dict[str, dict[str, dict]] = {}
    for (model_id, api_path), docs in sorted(routes.items()):
        linked = [d for d in docs if any(d["file"] in p["links"] for p in pages)]
        chosen = (linked or docs)[0]
        others = [d["file"] for d in docs if d is not chosen]
        if others:
            same = all(_comparable(d["raw"]) == _comparable(chosen["raw"]) for d in docs)
            how = "the same schema" if same else "a different schema"
            also = ", ".join(others)
            issues.append(
                f"{model_id} on {api_path}: also documented in {also} ({how}); used {chosen['file']}"
            )
        route = _route(model_id, chosen["raw"], chosen["file"], issues)
        route["path"] = api_path
        if others:
            route["also_in"] = others
        by_model.setdefault(model_id, {})[api_path] = route
    models = {}
    for model_id, by_path in by_model.items():
        primary_path = UNIVERSAL_PATH if UNIVERSAL_PATH in by_path else sorted(by_path)[0]
        entry = by_path[primary_path]
        entry["id"] = model_id
        entry["paths"] = [primary_path, *sorted(p for p in by_path if p != primary_path)]
        legacy = {
            p: {k: v for k, v in r.items() if k not in ("path",)}
            for p, r in by_path.items()
            if p != primary_path and r["schema"] != entry["schema"]
        }
        if legacy:
            entry["other_routes"] = legacy
        entry["aliases"] = []
        entry["vendor_folder"] = entry["source"].split("/")[0]
        entry.update(_capability(model_id, entry["required"], entry["fields"]))
        models[model_id] = entry
    return dict(sorted(models.items()))


def _route(model_id: str, raw: dict, file: str, issues: list[str]) -> dict:
    notes: list[str] = []
    schema = normalise(raw, "", notes)
    schema = {"$schema": DRAFT, **schema}
    props = schema.get("properties", {})
    fields, allowed = {}, {}
    for common, names in COMMON_FIELDS.items():
        present = [n for n in names if n in props]
        live = [n for n in present if not props[n].get("deprecated")]
        if present:
            name = (live or present)[0]
            fields[common] = name
            allowed[common] = {k: props[name][k] for k in ALLOWED_KEYS if k in props[name]}
            if len(present) > 1:
                notes.append(f"{common}: schema declares {', '.join(present)}; recorded {name}")
    for name, prop in props.items():
        for value in prop.get("enum", []):
            if not _type_matches(value, prop.get("type")):
                issues.append(f"{file}: {model_id}: {name} enum value {value!r} is not a {prop.get('type')}")
    return {
        "source": file,
        "schema": schema,
        "normalisations": notes,
        "fields": fields,
        "allowed": allowed,
        "required": sorted(schema.get("required", [])),
        "seed": "seed" in props,
    }


def _comparable(raw: dict):
    if isinstance(raw, dict):
        return {k: _comparable(v) for k, v in raw.items() if k not in ("description", "title", "example")}
    if isinstance(raw, list):
        return [_comparable(v) for v in raw]
    return raw


def _capability(model_id: str, required: list[str], fields: dict[str, str]) -> dict:
    """What the model does: from its id when the id says, else from what its schema requires.

    A text-to-video model that also declares an optional first frame is image-to-video too.
    """
    capability, basis = "text-to-video", "requires no image or video input"
    for pattern, from_id in ID_CAPABILITIES:
        if re.search(pattern, model_id):
            capability, basis = from_id, f"id matches /{pattern}/"
            break
    else:
        for names, from_required in REQUIRED_CAPABILITIES:
            hit = [n for n in names if n in required]
            if hit:
                capability, basis = from_required, f"requires {hit[0]}"
                break
    capabilities = [capability]
    first_frame = fields.get("image_url")
    if capability == "text-to-video" and first_frame and first_frame not in required:
        capabilities.append("image-to-video")
        basis += f"; optional {first_frame}"
    return {"capabilities": capabilities, "capability_basis": basis}


# ---------------------------------------------------------------------------------------------
# Normalising OpenAPI 3.0 schema objects to Draft 2020-12


def normalise(node, where: str, notes: list[str]):
    """A Draft 2020-12 copy of the OpenAPI schema `node`; every semantic change is added to `notes`."""
    if isinstance(node, list):
        return [normalise(item, f"{where}[{i}]", notes) for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out = {}
    # OpenAPI 2 style `required: true` on a property means "list me in the parent's required".
    props = node.get("properties", {})
    hoisted = [n for n, sub in props.items() if isinstance(sub, dict) and sub.get("required") is True]
    for key, value in node.items():
        if key in ("properties", "$defs", "patternProperties"):
            out[key] = {
                name: normalise(sub, f"{where}.{name}".lstrip("."), notes) for name, sub in value.items()
            }
        elif key == "description":
            out[key] = _one_line(value)
        elif key in ("title", "nullable", "example"):
            continue
        elif key in ("items", "not", "additionalProperties", "anyOf", "oneOf", "allOf"):
            out[key] = normalise(value, f"{where}.{key}" if key != "items" else f"{where}[]", notes)
        else:
            out[key] = copy.deepcopy(value)
    name = where or "(body)"
    if hoisted:
        listed = out.get("required", [])
        added = [n for n in hoisted if n not in listed]
        if added:
            out["required"] = [*listed, *added]
        moved = f"added to required: {', '.join(added)}" if added else "already in required"
        notes.append(f"{name}: property-level required: true on {', '.join(hoisted)} dropped ({moved})")
    if isinstance(node.get("required"), bool):
        del out["required"]
    if "example" in node:
        out["examples"] = [node["example"]]
        notes.append(f"{name}: OpenAPI example -> examples")
    if node.get("nullable") is True:
        _make_nullable(out, name, notes)
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), bool):
            if out[bound] and limit in out:
                out[bound] = out.pop(limit)
            else:
                del out[bound]
            notes.append(f"{name}: OpenAPI boolean {bound} -> numeric {bound}")
    if "default" in out:
        _fix_default(out, name, notes)
    return out


def _make_nullable(out: dict, name: str, notes: list[str]) -> None:
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    notes.append(f"{name}: nullable -> null allowed")


def _fix_default(out: dict, name: str, notes: list[str]) -> None:
    kind, value = out.get("type"), out["default"]
    if kind not in ("integer", "number", "boolean") or not isinstance(value, str):
        return
    parsed = _parse_scalar(value, kind)
    if parsed is not None and _allows(out, parsed):
        out["default"] = parsed
        notes.append(f"{name}: default {value!r} (a string) -> {parsed!r}")
    else:
        del out["default"]
        notes.append(f"{name}: default {value!r} is not an allowed {kind}: dropped")


def _parse_scalar(text: str, kind: str):
    if kind == "boolean":
        return {"true": True, "false": False}.get(text.strip().lower())
    try:
        number = float(text)
    except ValueError:
        return None
    if kind == "integer":
        return int(number) if number.is_integer() else None
    return int(number) if number.is_integer() else number


def _allows(schema: dict, value) -> bool:
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "minimum" in schema and value < schema["minimum"]:
        return False
    return not ("maximum" in schema and value > schema["maximum"])


def _type_matches(value, kind) -> bool:
    kinds = kind if isinstance(kind, list) else [kind]
    if kind is None or value is None:
        return True
    checks = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }
    return any(checks.get(k, True) for k in kinds)


def _one_line(text) -> str:
    if not isinstance(text, str):
        return text
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    line = re.split(r"(?<=[a-z0-9)`])\. ", line, maxsplit=1)[0]
    if len(line) > DESCRIPTION_CHARS:
        line = line[: DESCRIPTION_CHARS - 1].rstrip() + "…"
    return line


def _inline_refs(node, spec: dict, rel: str, seen: tuple[str, ...] = ()):
    if isinstance(node, list):
        return [_inline_refs(item, spec, rel, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#/components/schemas/") or ref in seen:
            raise DocsError(f"{VIDEO_DIR}/{rel}: cannot inline $ref {ref}")
        target = spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1])
        if target is None:
            raise DocsError(f"{VIDEO_DIR}/{rel}: $ref {ref} points nowhere")
        return _inline_refs(target, spec, rel, (*seen, ref))
    return {key: _inline_refs(value, spec, rel, seen) for key, value in node.items()}


# ---------------------------------------------------------------------------------------------
# Model pages: aliases and example requests

HINT = re.compile(r"following list of our models:(.*?)\{% endhint %\}", re.S)
LINK = re.compile(r"api-references/video-models/([^)\s]+?\.json)")
PY_BODY = re.compile(r"\b(?:data|payload|json)\s*=\s*\{")
CURL_DATA = re.compile(r"--data '(.*)'\s*$", re.S)


def _read_page(path: Path, video: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    hint = HINT.search(text)
    names = re.findall(r"`([^`\s]+)`", hint.group(1)) if hint else []
    links = sorted({m for m in LINK.findall(text) if m != FETCH_FILE})
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.S))
    return {"file": path.relative_to(video).as_posix(), "names": names, "links": links, "python": code}


def _page_is_for(page: dict, entry: dict) -> bool:
    return entry["source"] in page["links"] or entry["id"] in page["names"]


def _attach_aliases(models: dict, pages: list[dict], issues: list[str]) -> None:
    for page in pages:
        for link in page["links"]:
            if not any(e["source"] == link or link in e.get("also_in", []) for e in models.values()):
                issues.append(f"{page['file']}: links {link}, which declares no model here")
        for name in page["names"]:
            if name in models:
                continue
            owners = [e for e in models.values() if e["source"] in page["links"]]
            if len(owners) == 1:
                owners[0]["aliases"] = sorted({*owners[0]["aliases"], name})
            else:
                issues.append(f"{page['file']}: names model {name}, which no OpenAPI file declares")
        for name in page["names"]:
            entry = models.get(name)
            if entry and page["links"] and entry["source"] not in page["links"]:
                links = ", ".join(page["links"])
                issues.append(f"{page['file']}: names {name} but links {links}, not {entry['source']}")


def _attach_examples(models, routes, pages, video: Path, root: Path, issues: list[str]) -> None:
    names = {alias: m for m, e in models.items() for alias in [m, *e["aliases"]]}
    found: dict[str, dict[str, dict]] = {}

    def add(body, where: str) -> None:
        model_id = names.get(body.get("model")) if isinstance(body, dict) else None
        if model_id is None:
            issues.append(f"{where}: example request names unknown model {body.get('model')!r}")
            return
        found.setdefault(model_id, {})[json.dumps(body, sort_keys=True)] = body

    for docs in routes.values():
        for doc in docs:
            for sample in doc["samples"]:
                if sample.get("lang") == "cURL" and (match := CURL_DATA.search(sample.get("source", ""))):
                    body = _parse_curl_json(match.group(1))
                    if body is None:
                        issues.append(f"{doc['file']}: cURL example body is not JSON")
                    else:
                        add(body, doc["file"])
    for page in pages:
        for body, problem in _python_bodies(page["python"]):
            if problem:
                issues.append(f"{page['file']}: Python example body not literal ({problem}): skipped")
            else:
                add(body, page["file"])
    for model_id, bodies in found.items():
        models[model_id]["examples"] = [bodies[key] for key in sorted(bodies)]


def _parse_curl_json(text: str):
    # The pages write an apostrophe inside the single-quoted shell string as \' (or '\'').
    for candidate in (text, text.replace("'\\''", "'").replace("\\'", "'")):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


def _python_bodies(code: str):
    for match in PY_BODY.finditer(code):
        source = _balanced(code, match.end() - 1)
        if source is None:
            continue
        try:
            yield ast.literal_eval(source), None
        except (ValueError, SyntaxError) as error:
            yield None, type(error).__name__


def _balanced(code: str, start: int) -> str | None:
    """The Python expression from the `{` at `start` to its matching `}` (strings skipped)."""
    depth, quote, i = 0, None, start
    while i < len(code):
        if quote:
            if code.startswith(quote, i):
                i, quote = i + len(quote), None
                continue
            i += 2 if code[i] == "\\" else 1
            continue
        if code.startswith(("'''", '"""'), i):
            quote, i = code[i : i + 3], i + 3
            continue
        char = code[i]
        if char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return code[start : i + 1]
        i += 1
    return None


# ---------------------------------------------------------------------------------------------
# The model list page: which video models it lists, and which it says are gone

TABLE_ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
FIRST_CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.S)


def _table_ids(html: str) -> list[str]:
    """The model ids in the first column of an HTML table (several per cell, split by <br>)."""
    ids = []
    for row in TABLE_ROW.findall(html):
        cell = FIRST_CELL.search(row)
        if cell:
            text = re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", "\n", cell.group(1)))
            ids += [name.strip() for name in text.splitlines() if name.strip() not in ("", "-")]
    return ids


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^#+ [^\n]*{re.escape(heading)}[^\n]*\n(.*?)(?=^#+ |\Z)", text, re.S | re.M)
    return match.group(1) if match else ""


def _check_model_database(root: Path, models: dict, issues: list[str]) -> None:
    """Mark models the model list says are gone; list what it and the OpenAPI files disagree on."""
    path = root / MODEL_DATABASE
    if not path.exists():
        issues.append(f"{MODEL_DATABASE}: absent; availability not checked")
        return
    text = path.read_text(encoding="utf-8")
    listed = set(_table_ids(_section(text, "Video Models")))
    gone = set(_table_ids(_section(text, "No Longer Supported Models")))
    page = "model-database.md"
    for model_id, entry in models.items():
        names = {model_id, *entry["aliases"]}
        if names & gone:
            entry["withdrawn_in_docs"] = f"{page} lists it under Deprecated / No Longer Supported Models"
            issues.append(
                f"{page}: lists {model_id} as no longer supported; its OpenAPI file is still published"
            )
        elif not names & listed:
            issues.append(f"{page}: does not list {model_id} among the video models")
    catalogued = {name for m, e in models.items() for name in (m, *e["aliases"])}
    for name in sorted(listed - catalogued):
        issues.append(f"{page}: lists video model {name}, which no OpenAPI file here declares")


# ---------------------------------------------------------------------------------------------
# The poll answer


def _poll_shape(video: Path, root: Path, issues: list[str]) -> dict | None:
    path = video / FETCH_FILE
    if not path.exists():
        issues.append(f"{FETCH_FILE}: absent; no poll shape recorded")
        return None
    spec = _load_json(path, root)
    get = spec.get("paths", {}).get(UNIVERSAL_PATH, {}).get("get")
    if not get:
        issues.append(f"{FETCH_FILE}: no GET {UNIVERSAL_PATH}")
        return None
    answer = get.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
    notes: list[str] = []
    response = {"$schema": DRAFT, **normalise(answer.get("schema", {}), "", notes)}
    statuses = response.get("properties", {}).get("status", {}).get("enum", [])
    parameters = get.get("parameters", [])
    return {
        "source": FETCH_FILE,
        "method": "GET",
        "path": UNIVERSAL_PATH,
        "query": {p["name"]: bool(p.get("required")) for p in parameters if p.get("in") == "query"},
        "statuses": statuses,
        "response_schema": response,
        "normalisations": notes,
    }


if __name__ == "__main__":
    sys.exit(main())
