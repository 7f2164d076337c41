"""Prompt formatting helpers: ``l0.formatting``.

* :func:`context`: untrusted text in a delimited block it cannot close;
* :func:`memory`: a conversation history as text, within a token budget;
* :func:`json_output`: instructions to answer with JSON matching a schema or pydantic model;
* :func:`tool`: an OpenAI tools-format definition from a typed function or a pydantic model;
* :func:`parse_function_calls`: function calls written in a model's text output.

How each delimiter style keeps content inside its block:

``xml``
    ``<label>...</label>``; any tag in the content naming the block's label (``</label>``,
    ``< / LABEL >``, ``<label attr>``, any case or spacing) gets its ``<`` written as
    ``&lt;``. Other markup in the content is left alone (code stays readable). Tags are
    matched on the text as a reader sees it (NFKC, look-alikes folded, invisible format
    characters dropped); the escape is applied to the original.
``markdown``
    A heading and a fenced code block whose fence is one backtick longer than the longest
    backtick run in the content (CommonMark: a fence closes only on a run at least as long).
``brackets``
    ``[LABEL]...[/LABEL]``; any ``[LABEL]`` or ``[/LABEL]`` in the content (any case or
    spacing) gets its ``[`` written as ``\\[``.
"""

from __future__ import annotations

import inspect
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from l0_core.errors import ConfigError
from l0_core.runtime.chat_chunks import parse_arguments

__all__ = ["FunctionCall", "context", "json_output", "memory", "parse_function_calls", "tool"]

DELIMITERS = ("xml", "markdown", "brackets")
MEMORY_STYLES = ("conversational", "structured", "compact")


def _label(label: str) -> str:
    if not isinstance(label, str):
        raise ConfigError(f"label must be a str; got {type(label).__name__}")
    clean = re.sub(r"[^a-z0-9_-]+", "_", label.strip().lower()).strip("_")
    if not clean or not clean[0].isalpha():
        clean = "context" if not clean else f"x{clean}"
    return clean


# Look-alikes NFKC leaves alone: Cyrillic and Greek letters that read as Latin ones, and
# angle quotes and brackets that read as ``<``, ``>``, ``[``, ``]``.
_CONFUSABLES = str.maketrans({
    "\u0430": "a", "\u0441": "c", "\u0435": "e", "\u043e": "o", "\u0440": "p",
    "\u0445": "x", "\u0443": "y", "\u0456": "i", "\u0458": "j", "\u0455": "s",
    "\u04bb": "h", "\u0501": "d", "\u051b": "q", "\u051d": "w", "\u03bf": "o",
    "\u03b1": "a", "\u03b5": "e", "\u03b9": "i", "\u03ba": "k", "\u03bd": "v",
    "\u03c1": "p", "\u03c4": "t", "\u03c5": "u", "\u03c7": "x",
    "\u2039": "<", "\u203a": ">", "\u2329": "<", "\u232a": ">", "\u27e8": "<",
    "\u27e9": ">", "\u3008": "<", "\u3009": ">", "\u02c2": "<", "\u02c3": ">",
    "\u2044": "/", "\u2215": "/", "\u29f8": "/", "\u27e6": "[", "\u27e7": "]",
    "\u3010": "[", "\u3011": "]", "\u301a": "[", "\u301b": "]",
})


def _folded(content: str) -> tuple[str, list[int]]:
    """``content`` as a reader sees it (NFKC, look-alikes folded, invisible format
    characters dropped, lower case) and, for each of its characters, the index of the
    original character it came from."""
    if content.isascii():
        return content.lower(), list(range(len(content)))
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(content):
        if ch.isascii():
            out.append(ch.lower())
            where.append(i)
            continue
        if unicodedata.category(ch) == "Cf":
            continue  # zero-width spaces and joiners, direction marks: invisible
        folded = unicodedata.normalize("NFKC", ch).lower().translate(_CONFUSABLES)
        out.append(folded)
        where.extend([i] * len(folded))
    return "".join(out), where


def _escape_at(content: str, pattern: re.Pattern[str], escaped: str) -> str:
    """``content`` with the original character of each ``pattern`` match's first character
    (in the folded view) replaced by ``escaped``."""
    folded, where = _folded(content)
    hits = [where[m.start()] for m in pattern.finditer(folded)]
    if not hits:
        return content
    pieces, last = [], 0
    for i in hits:
        pieces.append(content[last:i])
        pieces.append(escaped)
        last = i + 1
    pieces.append(content[last:])
    return "".join(pieces)


def _escape_tags(content: str, name: str) -> str:
    return _escape_at(content, re.compile(rf"<(?=\s*/?\s*{re.escape(name.lower())}(?![\w-]))"),
                      "&lt;")


def _escape_brackets(content: str, name: str) -> str:
    return _escape_at(content, re.compile(rf"\[(?=\s*/?\s*{re.escape(name.lower())}\s*\])"),
                      "\\[")


def _title(label: str) -> str:
    """A markdown heading's text: one line, no backticks."""
    return " ".join(label.replace("`", " ").split()) or "Context"


def context(content: str, label: str = "context", delimiter: str = "xml") -> str:
    """``content`` in a block named ``label`` that nothing inside it can close."""
    if not isinstance(content, str):
        raise ConfigError(f"content must be a str; got {type(content).__name__}")
    name = _label(label)
    if delimiter == "xml":
        return f"<{name}>\n{_escape_tags(content, name)}\n</{name}>"
    if delimiter == "markdown":
        longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
        fence = "`" * max(3, longest + 1)
        return f"## {_title(label)}\n\n{fence}\n{content}\n{fence}"
    if delimiter == "brackets":
        tag = name.upper()
        return f"[{tag}]\n{_escape_brackets(content, tag)}\n[/{tag}]"
    raise ConfigError(f"delimiter must be one of {', '.join(map(repr, DELIMITERS))}; got "
                      f"{delimiter!r}")


# -- memory ---------------------------------------------------------------------------------


def _entries(entries: Iterable[Any]) -> list[tuple[str, str]]:
    out = []
    for entry in entries:
        if isinstance(entry, Mapping):
            role, content = entry.get("role"), entry.get("content")
        elif isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) == 2:
            role, content = entry
        else:
            role = content = None
        if not isinstance(role, str) or not isinstance(content, str):
            raise ConfigError(
                "memory entries must be {'role': str, 'content': str} mappings or "
                f"(role, content) pairs; got {entry!r}")
        out.append((role, content))
    return out


def _memory_line(role: str, content: str, style: str) -> str:
    if style == "conversational":  # continuation lines indented: content cannot forge a turn
        return f"{role.capitalize()}: {content.replace(chr(10), chr(10) + '  ')}"
    if style == "compact":
        return f"{role[:1].upper()}: {' '.join(content.split())}"
    tag = _label(role)
    body = _escape_tags(_escape_tags(content, "entry"), "memory")
    return f'<entry role="{tag}">{body}</entry>'


def _wrap_memory(lines: list[str], style: str, omitted: int) -> str:
    note = [f"({omitted} earlier entries omitted)"] if omitted else []
    if style == "structured":
        return "\n".join(["<memory>", *note, *lines, "</memory>"])
    return "\n".join([*note, *lines])


def memory(
    entries: Iterable[Mapping[str, str] | tuple[str, str]],
    style: str = "conversational",
    *,
    max_tokens: int | None = None,
    tokenizer: Any = "estimate",
) -> str:
    """A history as text: ``conversational`` (``User: ...``, continuation lines indented),
    ``structured`` (``<memory>`` with one ``<entry role=...>`` each) or ``compact`` (one
    line each, ``U: ...``).

    With ``max_tokens`` the oldest entries are dropped (and counted in a note) until the
    whole text (note, tags and line breaks included) fits; when even the newest entry alone
    does not fit, its beginning is cut (``...`` marks the cut). A budget too small for even
    that is a ``ConfigError``."""
    from l0_core.text.tokenizers import resolve_tokenizer

    if style not in MEMORY_STYLES:
        raise ConfigError(f"style must be one of {', '.join(map(repr, MEMORY_STYLES))}; got "
                          f"{style!r}")
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        raise ConfigError(f"max_tokens must be a positive int or None; got {max_tokens!r}")
    pairs = _entries(entries)
    lines = [_memory_line(role, content, style) for role, content in pairs]
    if max_tokens is None or not lines:
        return _wrap_memory(lines, style, 0)
    tok = resolve_tokenizer(tokenizer)
    total = len(lines)
    budget = max_tokens - tok.count(_wrap_memory([], style, total))
    kept, sep = 0, tok.count("\n")
    for line in reversed(lines):  # newest first, each line counted once (an estimate) ...
        budget -= tok.count(line) + sep
        if budget < 0:
            break
        kept += 1
    while kept:  # ... then the text itself is counted until it fits
        text = _wrap_memory(lines[total - kept:], style, total - kept)
        if tok.count(text) <= max_tokens:
            return text
        kept -= 1
    return _cut_newest(pairs[-1], style, total, max_tokens, tok)


def _cut_newest(pair: tuple[str, str], style: str, total: int, max_tokens: int,
                tok: Any) -> str:
    """The newest entry with as much of its end as fits (found by bisection)."""
    role, content = pair
    starts = tok.offsets(content)
    omitted = total - 1

    def text(tokens: int) -> str:
        tail = content if tokens >= len(starts) else (
            "..." + (content[starts[len(starts) - tokens]:] if tokens else ""))
        return _wrap_memory([_memory_line(role, tail, style)], style, omitted)

    def most() -> int:
        lo, hi = -1, len(starts)  # text(lo) fits (-1: not even text(0)); text(hi + 1) not
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if tok.count(text(mid)) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        return lo

    lo = most()
    if lo < 1 and omitted:  # no room for both the note and some of the entry: the entry wins
        omitted = 0
        lo = most()
    if lo < 0:
        raise ConfigError(f"max_tokens={max_tokens} is too small for even the cut newest "
                          f"entry ({tok.count(text(0))} tokens)")
    return text(lo)


# -- output and tools ----------------------------------------------------------------------


def _schema_of(schema: Any) -> dict[str, Any]:
    if isinstance(schema, Mapping):
        return dict(schema)
    json_schema = getattr(schema, "model_json_schema", None)
    if inspect.isclass(schema) and callable(json_schema):
        result: dict[str, Any] = json_schema()
        return result
    raise ConfigError(f"schema must be a pydantic model class or a JSON Schema mapping; got "
                      f"{schema!r}")


def json_output(schema: Any) -> str:
    """Instructions to answer with one JSON value matching ``schema`` (a pydantic model
    class or a JSON Schema mapping)."""
    text = json.dumps(_schema_of(schema), indent=2, sort_keys=True)
    return (
        "Respond with a single JSON value that matches this JSON Schema. Output only the "
        "JSON: no explanation, no Markdown code fence.\n\n"
        f"JSON Schema:\n{text}"
    )


_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|"
                      r"Examples?|Notes?|Attributes)\s*:?\s*$")
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_GOOGLE_ARG = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ARG = re.compile(r"^(\*{0,2}\w+)\s*(?::.*)?$")


def _own_doc(obj: Any) -> str:
    """The object's own docstring (a class's, never one inherited from a base class)."""
    raw = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return inspect.cleandoc(raw) if isinstance(raw, str) else ""


def _doc(obj: Any) -> str:
    """The first paragraph of the docstring, up to any section (``Args:``, ``Parameters``)."""
    lines: list[str] = []
    for line in _own_doc(obj).splitlines():
        if not line.strip() or _SECTION.match(line):
            if lines or _SECTION.match(line):
                break
            continue
        lines.append(line.strip())
    return " ".join(lines)


def _param_docs(obj: Any) -> dict[str, str]:
    """Parameter descriptions from a Google-style ``Args:`` section or a NumPy-style
    ``Parameters`` section of the docstring."""
    lines = _own_doc(obj).splitlines()
    found: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _SECTION.match(lines[i])
        numpy = m is not None and i + 1 < len(lines) and bool(_NUMPY_RULE.match(lines[i + 1]))
        if m is None or m.group(1) not in ("Args", "Arguments", "Parameters", "Params"):
            i += 1
            continue
        i += 2 if numpy else 1
        i = _section_args(lines, i, numpy, found)
    return found


def _section_args(lines: list[str], i: int, numpy: bool, found: dict[str, str]) -> int:
    """Read one section's entries into ``found``; the index after the section."""
    base: int | None = None
    name = ""
    while i < len(lines):
        line = lines[i]
        if line.strip() and (_SECTION.match(line) or (
                i + 1 < len(lines) and _NUMPY_RULE.match(lines[i + 1]))):
            break
        indent = len(line) - len(line.lstrip())
        if not line.strip():
            i += 1
            continue
        if base is None:
            base = indent
        if indent < base:
            break
        m = (_NUMPY_ARG if numpy else _GOOGLE_ARG).match(line.strip())
        if indent == base and m is not None:
            name = m.group(1).lstrip("*")
            found[name] = "" if numpy else m.group(2).strip()
        elif name:
            found[name] = f"{found[name]} {line.strip()}".strip()
        i += 1
    return i


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # name the parameter whose annotation does not resolve
        culprit = next((p for p in inspect.signature(fn).parameters.values()
                        if isinstance(p.annotation, str) and not _resolves(fn, p.annotation)),
                       None)
        where = f"parameter {culprit.name!r}" if culprit else "an annotation"
        raise ConfigError(f"tool {fn.__name__}: the type annotation of {where} cannot be "
                          f"resolved ({exc})") from exc


def _resolves(fn: Callable[..., Any], annotation: str) -> bool:
    value: Any = annotation
    try:
        for _ in range(3):  # a quoted annotation under ``from __future__ import annotations``
            if not isinstance(value, str):
                break
            value = eval(value, getattr(fn, "__globals__", {}))
    except Exception:
        return False
    return True


def _function_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    import pydantic

    hints = _hints(fn)
    fields: dict[str, Any] = {}
    names: dict[str, str] = {}
    for i, param in enumerate(inspect.signature(fn).parameters.values()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.name not in hints:
            raise ConfigError(f"tool {fn.__name__}: parameter {param.name!r} has no type "
                              f"annotation; every parameter of a tool needs one")
        default = ... if param.default is param.empty else param.default
        # Fields are named p0, p1, ...: a parameter may be called anything (``_x``,
        # ``model_config``, ``json``); the schema shows its own name, the alias.
        names[f"p{i}"] = param.name
        fields[f"p{i}"] = (hints[param.name], pydantic.Field(default, alias=param.name))
    try:
        model = pydantic.create_model(f"{fn.__name__}_arguments", **fields)
        return model.model_json_schema(by_alias=True)
    except Exception as exc:
        culprit = _bad_field(fields, names)
        where = f"parameter {culprit!r}" if culprit else "its parameters"
        raise ConfigError(f"tool {fn.__name__}: no JSON Schema for the type of {where} "
                          f"({type(exc).__name__}: {exc})") from exc


def _bad_field(fields: dict[str, Any], names: dict[str, str]) -> str | None:
    import pydantic

    for key, spec in fields.items():
        try:
            pydantic.create_model("one", **{key: spec}).model_json_schema()
        except Exception:
            return names[key]
    return None


def tool(obj: Any, *, name: str | None = None, description: str | None = None) -> dict[str, Any]:
    """An OpenAI tools-format definition (``{"type": "function", "function": {...}}``) of a
    typed function or a pydantic model class; the JSON Schema of its parameters comes from
    the annotations (``Annotated[..., Field(description=...)]`` describes a parameter, and so
    does a Google-style ``Args:`` or NumPy-style ``Parameters`` section of the docstring).
    A parameter whose type has no JSON Schema is a ``ConfigError`` naming it."""
    if inspect.isclass(obj) and callable(getattr(obj, "model_json_schema", None)):
        parameters = _schema_of(obj)
    elif inspect.isfunction(obj) or inspect.ismethod(obj):
        parameters = _function_schema(obj)
    else:
        raise ConfigError(f"tool() takes a typed function or a pydantic model class; got "
                          f"{obj!r}")
    parameters.pop("title", None)
    parameters.pop("description", None)  # it is the function's description
    properties = parameters.setdefault("properties", {})
    for param, text in _param_docs(obj).items():
        prop = properties.get(param)
        if isinstance(prop, dict) and text and "description" not in prop:
            prop["description"] = text
    return {
        "type": "function",
        "function": {
            "name": name or obj.__name__,
            "description": description if description is not None else _doc(obj),
            "parameters": parameters,
        },
    }


# -- function calls in model output ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A function call found in model output: ``name`` and parsed ``arguments``."""

    name: str
    arguments: dict[str, Any]


_OPEN_TAG = re.compile(r"<(tool_call|function_call)>", re.IGNORECASE)
_CLOSE_TAG = {tag: re.compile(rf"</{tag}>", re.IGNORECASE)
              for tag in ("tool_call", "function_call")}
#: deepest nesting of ``{}`` / ``[]`` a call may have (deeper objects are not calls)
MAX_DEPTH = 64
_SPECIAL = re.compile(r'[{}\[\]"\\\n]')


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


_STRICT = json.JSONDecoder(parse_constant=_not_json)  # NaN and Infinity are not JSON


def _tagged(text: str) -> list[str]:
    """The bodies of ``<tool_call>...</tool_call>`` (or ``function_call``) blocks, in one
    left-to-right scan: each block closes at the first matching closing tag after it."""
    bodies: list[str] = []
    closed: set[str] = set()  # tags with no closing tag left: later openings never close
    pos = 0
    while (m := _OPEN_TAG.search(text, pos)) is not None:
        tag = m.group(1).lower()
        if tag in closed:
            pos = m.end()
            continue
        close = _CLOSE_TAG[tag].search(text, m.end())
        if close is None:
            closed.add(tag)
            pos = m.end()
            continue
        bodies.append(text[m.end():close.start()].strip())
        pos = close.end()
    return bodies


def _spans(text: str) -> list[tuple[int, int, int]]:
    """``(start, end, depth)`` of every balanced ``{...}`` in ``text`` (``end`` exclusive,
    ``depth`` the deepest bracket nesting inside it), ordered by start; one linear scan,
    aware of JSON strings (a raw newline ends a string: JSON strings never hold one)."""
    spans: list[tuple[int, int, int]] = []
    stack: list[list[Any]] = []  # [bracket, start, deepest nesting below]
    in_string = False
    skip = -1  # the character after a backslash in a string
    for m in _SPECIAL.finditer(text):
        i = m.start()
        ch = text[i]
        if in_string:
            if i == skip:
                continue
            if ch == "\\":
                skip = i + 1
            elif ch == '"' or ch == "\n":
                in_string = False
        elif ch in "{[":
            stack.append([ch, i, 0])
        elif ch in "}]" and stack:
            if stack[-1][0] != ("{" if ch == "}" else "["):
                continue  # a stray closer: ignored
            bracket, start, below = stack.pop()
            if stack and stack[-1][2] < below + 1:
                stack[-1][2] = below + 1
            if bracket == "{":
                spans.append((start, i + 1, below + 1))
        elif ch == '"' and stack:
            in_string = True
    spans.sort()
    return spans


def _objects(text: str) -> Iterable[Any]:
    """Every top-level JSON object in ``text``, left to right: each balanced ``{...}`` that
    decodes, else the ones inside it. Linear in practice: nothing is decoded that is not
    balanced, nested deeper than :data:`MAX_DEPTH`, or beyond a work budget proportional to
    the text."""
    budget = 8 * len(text) + 4096
    resume = 0
    for start, end, depth in _spans(text):
        if start < resume or depth > MAX_DEPTH:
            continue
        budget -= end - start
        if budget < 0:
            return
        try:
            value = _STRICT.decode(text[start:end])
        except (ValueError, RecursionError):
            continue
        resume = end
        yield value


def _calls_in(value: Any) -> Iterable[FunctionCall]:
    if isinstance(value, list):
        for item in value:
            yield from _calls_in(item)
        return
    if not isinstance(value, dict):
        return
    if isinstance(value.get("tool_calls"), list):
        yield from _calls_in(value["tool_calls"])
        return
    if isinstance(value.get("function"), dict):
        value = value["function"]
    name = value.get("name")
    if not isinstance(name, str) or not name:
        return
    args = value.get("arguments", value.get("parameters", {}))
    if isinstance(args, str):
        args = parse_arguments(args, name=name, call_id="")
    if isinstance(args, dict):
        yield FunctionCall(name, args)


def parse_function_calls(text: str) -> list[FunctionCall]:
    """Function calls written in ``text``: ``<tool_call>{...}</tool_call>`` blocks when there
    are any, otherwise every JSON object (bare or in a code fence) shaped like
    ``{"name": ..., "arguments": {...}}`` (also ``"parameters"``, arguments as a JSON string,
    OpenAI's ``{"function": {...}}`` and ``{"tool_calls": [...]}``). Arguments that are a
    string but not a JSON object raise an ``L0Error``."""
    if not isinstance(text, str):
        raise ConfigError(f"text must be a str; got {type(text).__name__}")
    tagged = _tagged(text)
    if tagged:
        found: list[FunctionCall] = []
        for body in tagged:
            for value in _objects(body):
                found.extend(_calls_in(value))
        return found
    return [call for value in _objects(text) for call in _calls_in(value)]
