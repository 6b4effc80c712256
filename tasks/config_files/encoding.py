"""Write a ``${NAME}`` value so that it reads back as exactly that value where it stands. Pure.

A value is data, never syntax: a ``"``, a line break or a ``#`` in a password must not add a key to a
JSON, YAML, properties or XML file, nor cut a value short. Each format's scanner tells what surrounds
each placeholder of the template (a JSON string, a bare JSON value, a YAML double-quoted scalar, a plain
YAML scalar, a properties key or value, an XML attribute, …) and the value is encoded for that place.
Where no encoding can keep the value intact (a line break in a YAML comment, ``]]>`` in a CDATA
section, a word in a bare JSON value) the placeholder is refused with the reason, never written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import yaml

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")


class PlaceholderProblem(ValueError):
    """A value that cannot stand where its placeholder is, at ``line`` of the template."""

    def __init__(self, line: int, name: str, reason: str) -> None:
        self.line, self.name, self.reason = line, name, reason
        super().__init__(f"line {line}: ${{{name}}} {reason}")


@dataclass
class Rendered:
    """The substituted text and, per placeholder, the text written in its place (to mask secrets by)."""

    text: str
    written: dict[str, set[str]] = field(default_factory=dict)


def render(text: str, values: Mapping[str, str], fmt: str) -> Rendered:
    """Replace every placeholder with its value encoded for its place in a ``fmt`` file."""
    contexts = dict(SCANNERS.get(fmt, _raw)(text))
    rendered = Rendered("")
    parts, last = [], 0
    for match in PLACEHOLDER.finditer(text):
        name, value = match.group(1), str(values[match.group(1)])
        try:
            encoded = _encode(value, contexts.get(match.start(), Place("raw")))
        except ValueError as exc:
            raise PlaceholderProblem(text.count("\n", 0, match.start()) + 1, name, str(exc)) from None
        rendered.written.setdefault(name, set()).add(encoded)
        parts += [text[last:match.start()], encoded]
        last = match.end()
    rendered.text = "".join([*parts, text[last:]])
    return rendered


@dataclass(frozen=True)
class Place:
    """What surrounds a placeholder: a kind (``json-string``, ``yaml-plain``, …) and, for a YAML block
    scalar, the indentation of its content."""

    kind: str
    indent: int = 0


Scan = Iterator[tuple[int, Place]]


def _placeholder_at(text: str, i: int) -> re.Match[str] | None:
    return PLACEHOLDER.match(text, i) if text.startswith("${", i) else None


def _raw(text: str) -> Scan:
    return iter(())


# JSON ---------------------------------------------------------------------------------------------

_JSON_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")


def _json(text: str) -> Scan:
    in_string, i = False, 0
    while i < len(text):
        if m := _placeholder_at(text, i):
            yield i, Place("json-string" if in_string else "json-bare")
            i = m.end()
            continue
        if in_string and text[i] == "\\":
            i += 1
        elif text[i] == '"':
            in_string = not in_string
        i += 1


# YAML ---------------------------------------------------------------------------------------------

_BREAKS = "\n\r\x85\u2028\u2029"
_YAML_PRINTABLE = re.compile("[\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_BLOCK_HEADER = re.compile(r"[|>][+-]?[1-9]?[+-]?\s*(?:#.*)?$")


class _YamlScan:
    """Line by line, what each placeholder stands in; quoted scalars and flow collections may span lines."""

    def __init__(self) -> None:
        self.quote: str | None = None
        self.flow = 0
        self.block: tuple[str, int] | None = None  # (literal|folded, indent of the header line)
        self.block_indent: int | None = None  # indentation of the block scalar's content

    def scan(self, text: str) -> Scan:
        pos = 0
        for line in text.splitlines(keepends=True):
            yield from self._line(line.rstrip("\r\n"), pos)
            pos += len(line)

    def _line(self, body: str, pos: int) -> Scan:
        indent = len(body) - len(body.lstrip(" "))
        if self.block and (not body.strip() or indent > self.block[1]):
            if body.strip() and self.block_indent is None:
                self.block_indent = indent
            for m in PLACEHOLDER.finditer(body):
                first = m.start() == indent
                yield pos + m.start(), Place(f"yaml-{self.block[0]}{'-first' if first else ''}",
                                             self.block_indent or indent)
            return
        self.block, self.block_indent = None, None
        at_start, i = self.quote is None, indent
        while i < len(body):
            c = body[i]
            if m := _placeholder_at(body, i):
                yield pos + i, Place(self._kind(body, m, at_start))
                at_start, i = False, m.end()
                continue
            if self.quote == '"':
                if c == "\\":
                    i += 1
                elif c == '"':
                    self.quote = None
            elif self.quote == "'":
                if c == "'" and body[i + 1:i + 2] == "'":
                    i += 1
                elif c == "'":
                    self.quote = None
            elif c == "#" and (i == 0 or body[i - 1] in " \t"):
                for m in PLACEHOLDER.finditer(body, i):
                    yield pos + m.start(), Place("yaml-comment")
                return
            elif at_start and c in "\"'":
                self.quote, at_start = c, False
            elif at_start and c in "|>" and _BLOCK_HEADER.match(body, i):
                self.block = ("literal" if c == "|" else "folded", indent)
                return
            elif at_start and c in "&!":  # anchor or tag before the node
                while i + 1 < len(body) and body[i + 1] not in " \t":
                    i += 1
            elif c in "-?" and at_start and body[i + 1:i + 2] in ("", " "):
                pass
            elif c == ":" and (body[i + 1:i + 2] in ("", " ", "\t") or (self.flow and body[i + 1] in ",[]{}")):
                at_start = True
            elif c in "[{" and (at_start or self.flow):
                self.flow, at_start = self.flow + 1, True
            elif c in "]}" and self.flow:
                self.flow, at_start = self.flow - 1, False
            elif c == "," and self.flow:
                at_start = True
            elif c not in " \t":
                at_start = False
            i += 1

    def _kind(self, body: str, m: re.Match[str], at_start: bool) -> str:
        if self.quote:
            return "yaml-double" if self.quote == '"' else "yaml-single"
        rest = body[m.end():].lstrip(" \t")
        whole = not rest or body[m.end()] in " \t" and rest[0] == "#" or rest[0] == ":" and rest[1:2] in ("", " ")
        whole = whole or bool(self.flow and rest[:1] in (",", "]", "}", ":"))
        if at_start and whole:
            return "yaml-plain-flow" if self.flow else "yaml-plain"
        return "yaml-part-first" if at_start else "yaml-part"


def _yaml(text: str) -> Scan:
    return _YamlScan().scan(text)


_YAML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\x00": "\\0",
                 "\x85": "\\N", "\u2028": "\\L", "\u2029": "\\P", "\ufeff": "\\uFEFF"}


def yaml_double(value: str) -> str:
    """The inside of a YAML double-quoted scalar (no folding, every unprintable character escaped)."""
    out = []
    for c in value:
        if c in _YAML_ESCAPES:
            out.append(_YAML_ESCAPES[c])
        elif not _YAML_PRINTABLE.fullmatch(c) or "\x7f" <= c <= "\x9f":
            out.append(f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return "".join(out)


def _yaml_plain_reads_back(value: str, flow: bool) -> bool:
    """Whether ``value`` written bare reads back as that very text (a string, or a number or boolean
    spelled canonically, as a template's ``port: ${PORT}`` means); else it has to be quoted."""
    if (not value or value != value.strip() or not _YAML_PRINTABLE.fullmatch(value) or "\t" in value
            or any(c in value for c in _BREAKS) or value[0] in "%@`" or value.startswith(("---", "..."))
            or (flow and any(c in value for c in ",[]{}"))):
        return False
    try:
        loaded = yaml.safe_load(f"k: {value}\n")
    except yaml.YAMLError:
        return False
    if not isinstance(loaded, dict) or list(loaded) != ["k"]:
        return False
    read = loaded["k"]
    if isinstance(read, bool):
        return value.lower() in ("true", "false")
    if isinstance(read, int | float):
        return str(read) == value
    return read == value


_PLAIN_PART = re.compile(r"[\w.~/+=^@%$()-]*(?::[\w.~/+=^@%$()-]+)*")


def _yaml_part(value: str, first: bool) -> str:
    if not _PLAIN_PART.fullmatch(value) or (first and value and not re.match(r"[\w./~$(]", value)):
        raise ValueError("is part of an unquoted YAML value and its value has characters that would change "
                         "the file there; put the whole value in double quotes in the template")
    return value


def _yaml_block(value: str, place: Place) -> str:
    if not _YAML_PRINTABLE.fullmatch(value) or any(c in value for c in "\r\x85\u2028\u2029"):
        raise ValueError("stands in a YAML block scalar and its value has characters only a double-quoted "
                         "scalar can hold")
    if "\n" in value and place.kind.startswith("yaml-folded"):
        raise ValueError("stands in a folded YAML block scalar (>), which would fold its line breaks; use |")
    if place.kind.endswith("-first") and value[:1] in (" ", "\n"):
        raise ValueError("begins a YAML block scalar line and its value begins with a space or line break, "
                         "which would change the block's indentation")
    return value.replace("\n", "\n" + " " * place.indent)


def _no_breaks(value: str, where: str) -> str:
    if any(c in value for c in _BREAKS):
        raise ValueError(f"stands in {where} and its value has a line break")
    return value


def _yaml_single(value: str) -> str:
    if any(c in value for c in _BREAKS) or not _YAML_PRINTABLE.fullmatch(value):
        raise ValueError("stands in a single-quoted YAML scalar, which cannot hold a line break or control "
                         "character; use double quotes in the template")
    return value.replace("'", "''")


# properties ---------------------------------------------------------------------------------------

def _properties(text: str) -> Scan:
    """java.util.Properties: logical lines (a line ending in an odd number of backslashes continues);
    the key ends at the first unescaped ``=``, ``:`` or white space; leading white space of a value and
    of a continuation line is dropped."""
    pos, continuing = 0, False
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        yield from _properties_line(body, pos, continuing)
        stripped = body.lstrip(" \t\f")
        comment = not continuing and stripped[:1] in ("#", "!")
        continuing = not comment and (len(body) - len(body.rstrip("\\"))) % 2 == 1
        pos += len(line)


def _properties_line(body: str, pos: int, continuing: bool) -> Scan:
    i = len(body) - len(body.lstrip(" \t\f"))
    if not continuing and body[i:i + 1] in ("#", "!"):
        for m in PLACEHOLDER.finditer(body, i):
            yield pos + m.start(), Place("prop-comment")
        return
    in_key, value_start = not continuing, i if continuing else None
    while i < len(body):
        if m := _placeholder_at(body, i):
            kind = "prop-key" if in_key else "prop-value-start" if i == value_start else "prop-value"
            yield pos + i, Place(kind)
            i = m.end()
            continue
        c = body[i]
        if c == "\\":
            i += 1
        elif in_key and c in "=: \t\f":
            in_key = False
            j = i + 1 if c in "=:" else i
            while j < len(body) and body[j] in " \t\f":
                j += 1
            if c not in "=:" and body[j:j + 1] in ("=", ":"):
                j += 1
                while j < len(body) and body[j] in " \t\f":
                    j += 1
            value_start, i = j, j
            continue
        i += 1


_PROPERTIES_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}


def properties_escape(value: str, *, key: bool = False, leading: bool = False) -> str:
    """java.util.Properties escaping; anything outside printable ASCII as ``\\uXXXX`` (so the file reads
    the same as ISO-8859-1, as ``Properties.load(InputStream)`` reads it, or as UTF-8)."""
    out = []
    for index, c in enumerate(value):
        if c in _PROPERTIES_ESCAPES:
            out.append(_PROPERTIES_ESCAPES[c])
        elif (key and c in " =:#!") or (leading and index == 0 and c in " =:"):
            out.append("\\" + c)
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.append("".join(f"\\u{unit:04x}" for unit in _utf16(c)))
    return "".join(out)


def _utf16(c: str) -> list[int]:
    data = c.encode("utf-16-be", "surrogatepass")
    return [int.from_bytes(data[k:k + 2], "big") for k in range(0, len(data), 2)]


# XML ----------------------------------------------------------------------------------------------

_XML_CHARS = re.compile("[\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_XML_NAME = re.compile(r"[A-Za-z_:][\w.:-]*")
_XML_ENDS = (("<!--", "-->", "xml-comment"), ("<![CDATA[", "]]>", "xml-cdata"), ("<?", "?>", "xml-pi"),
             ("<!", ">", "xml-declaration"))


def _xml(text: str) -> Scan:
    i, state, end, quote = 0, "xml-text", "", ""
    while i < len(text):
        if m := _placeholder_at(text, i):
            yield i, Place(state)
            i = m.end()
            continue
        c = text[i]
        if state == "xml-text" and c == "<":
            opened = next(((o, e, k) for o, e, k in _XML_ENDS if text.startswith(o, i)), ("<", ">", "xml-markup"))
            state, end = opened[2], opened[1]
            i += len(opened[0])
            continue
        if state == "xml-markup" and c in "\"'":
            state, quote = "xml-attribute", c
        elif state == "xml-attribute" and c == quote:
            state = "xml-markup"
        elif state != "xml-text" and state != "xml-attribute" and text.startswith(end, i):
            state = "xml-text"
            i += len(end)
            continue
        i += 1


_XML_TEXT = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_XML_ATTRIBUTE = {**_XML_TEXT, '"': "&quot;", "'": "&apos;", "\n": "&#10;", "\t": "&#9;"}


def xml_escape(value: str, *, attribute: bool = False) -> str:
    if not _XML_CHARS.fullmatch(value):
        raise ValueError("has a control character XML 1.0 cannot hold")
    table = _XML_ATTRIBUTE if attribute else _XML_TEXT
    return "".join(table.get(c, c) for c in value)


def _xml_verbatim(value: str, forbidden: str, where: str) -> str:
    if not _XML_CHARS.fullmatch(value) or forbidden in value or "\r" in value:
        raise ValueError(f"stands in {where} and its value holds {forbidden!r}, a carriage return or a control "
                         "character, which cannot be written there")
    return value


def _xml_name(value: str) -> str:
    if not _XML_NAME.fullmatch(value):
        raise ValueError("stands in XML markup (an element or attribute name) and its value is not an XML name")
    return value


# encoders -----------------------------------------------------------------------------------------

def _json_bare(value: str) -> str:
    if not _JSON_SCALAR.fullmatch(value):
        raise ValueError("stands unquoted in JSON, so its value must be a JSON number, true, false or null; "
                         "put the placeholder in quotes for a string")
    return value


def _refuse(where: str) -> Callable[[str], str]:
    def refuse(value: str) -> str:
        raise ValueError(f"stands in {where}, where a value cannot be written safely")
    return refuse


_ENCODERS: dict[str, Callable[[str], str]] = {
    "raw": str,
    "json-string": lambda v: json.dumps(v, ensure_ascii=False)[1:-1],
    "json-bare": _json_bare,
    "yaml-double": yaml_double,
    "yaml-single": _yaml_single,
    "yaml-plain": lambda v: v if _yaml_plain_reads_back(v, False) else f'"{yaml_double(v)}"',
    "yaml-plain-flow": lambda v: v if _yaml_plain_reads_back(v, True) else f'"{yaml_double(v)}"',
    "yaml-part": lambda v: _yaml_part(v, False),
    "yaml-part-first": lambda v: _yaml_part(v, True),
    "yaml-comment": lambda v: _no_breaks(v, "a YAML comment"),
    "prop-key": lambda v: properties_escape(v, key=True),
    "prop-value": properties_escape,
    "prop-value-start": lambda v: properties_escape(v, leading=True),
    "prop-comment": lambda v: _no_breaks(v, "a properties comment"),
    "xml-text": xml_escape,
    "xml-attribute": lambda v: xml_escape(v, attribute=True),
    "xml-comment": lambda v: _xml_verbatim(v + ("-" if v.endswith("-") else ""), "--", "an XML comment"),
    "xml-cdata": lambda v: _xml_verbatim(v, "]]>", "a CDATA section"),
    "xml-pi": lambda v: _xml_verbatim(v, "?>", "an XML processing instruction"),
    "xml-markup": _xml_name,
    "xml-declaration": _refuse("an XML declaration (<!DOCTYPE …>)"),
}


def _encode(value: str, place: Place) -> str:
    if place.kind.startswith(("yaml-literal", "yaml-folded")):
        return _yaml_block(value, place)
    return _ENCODERS[place.kind](value)


SCANNERS: dict[str, Callable[[str], Scan]] = {"json": _json, "yaml": _yaml, "properties": _properties, "xml": _xml}
