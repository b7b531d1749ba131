"""Amazon EventBridge event-pattern matching, run locally.

A stand-in for EventBridge content filtering (``TestEventPattern`` and rule matching on
an event bus), written from the AWS documentation and checked against outcomes that
were recorded on AWS (``tests/conformance/eventbridge-patterns``).

Supported: exact values (strings, numbers, booleans, ``null``), value lists as any-of,
arrays in the event (any element may match), nested objects and arrays of objects,
``exists``, ``prefix``, ``suffix`` (both also with ``equals-ignore-case``),
``equals-ignore-case``, ``anything-but`` (a value, a list, ``prefix``, ``suffix``,
``wildcard``, ``equals-ignore-case``), ``numeric`` ranges, ``cidr`` (IPv4 and IPv6),
``wildcard`` and ``$or``. Invalid patterns raise :class:`InvalidEventPattern` carrying
the message AWS returns.

How a pattern is read, as EventBridge does it:

* Field names are joined with dots, in the pattern and in the event alike, so
  ``{"a": {"b": [1]}}`` and ``{"a.b": [1]}`` are the same pattern. If the same joined
  name occurs twice in one pattern (for example a key repeated in one JSON object),
  the later occurrence wins; both are still validated.
* Only leaf values (strings, numbers, booleans, ``null``) are matched; an object or an
  empty array in the event is not a value, so ``exists`` only looks at leaves.
* When several fields of a pattern come from objects inside the same event array,
  they must all come from the same element of that array.

Example:

>>> pattern = {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}}
>>> matches(pattern, {"source": "shop", "detail": {"total": 250}})
True
>>> matches(pattern, {"source": "shop", "detail": {"total": "250"}})
False
>>> try:
...     validate({"source": "shop"})
... except InvalidEventPattern as error:
...     print(error)
Event pattern is not valid. Reason: "source" must be an object or an array
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import count
from typing import NamedTuple

__all__ = ["InvalidEventPattern", "matches", "validate"]

_ERROR_PREFIX = "Event pattern is not valid. Reason: "
_FIVE_BILLION = 5e9
_NUMBER_RANGE_ERROR = "Value must be between -5.0E9 and 5.0E9, inclusive"
_TOO_COMPLEX = (
    "Rule is too complex - try using fewer wildcard characters or fewer repeating "
    "character sequences after a wildcard character"
)
# Most positions of one wildcard pattern that a single input string may keep "alive" at
# once (see _wildcard_complexity). AWS does not publish its limit or its measure; this
# value accepts every wildcard AWS accepted in the conformance data (at most 8) and
# rejects the one AWS rejected (13), with room on both sides.
_MAX_WILDCARD_COMPLEXITY = 10
_COMPLEXITY_SEARCH_BUDGET = 20_000
_OR = "$or"
type _Tokens = tuple[str | None, ...]  # a wildcard pattern: one character each; None is a "*"
_OPERATORS = frozenset(
    {
        "prefix",
        "suffix",
        "equals-ignore-case",
        "anything-but",
        "numeric",
        "exists",
        "cidr",
        "wildcard",
    }
)


class InvalidEventPattern(ValueError):
    """An event pattern that EventBridge would reject (``InvalidEventPatternException``).

    ``str(error)`` is the message AWS returns, for example
    ``Event pattern is not valid. Reason: "int" must be an object or an array``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(_ERROR_PREFIX + reason)
        self.reason = reason


# --------------------------------------------------------------------------- parsing


class _Pairs:
    """A JSON object parsed from text with its members in order, repeated keys kept."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, object]]) -> None:
        self.items = items


def _parse_pattern_text(text: str) -> object:
    """Parse raw JSON text, keeping repeated keys (AWS lets the later one win)."""

    def reject_constant(name: str) -> object:
        raise InvalidEventPattern(f"Non-standard token '{name}'")

    try:
        parsed: object = json.loads(text, object_pairs_hook=_Pairs, parse_constant=reject_constant)
    except json.JSONDecodeError as error:
        raise InvalidEventPattern(
            error.msg + f" at line {error.lineno}, column {error.colno}"
        ) from None
    return parsed


def _is_object(value: object) -> bool:
    """True for a JSON object: a dict, or one parsed from text."""
    return isinstance(value, Mapping | _Pairs)


def _members(value: object) -> list[tuple[str, object]]:
    """The members of a JSON object, in order, with keys as strings."""
    if isinstance(value, _Pairs):
        return value.items
    if isinstance(value, Mapping):
        return [(str(key), member) for key, member in value.items()]
    return []


def _is_array(value: object) -> bool:
    """True for a JSON array."""
    return isinstance(value, list | tuple)


def _is_number(value: object) -> bool:
    """True for a JSON number (``bool`` is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _to_plain(value: object) -> object:
    """Turn parsed text back into dicts and lists; of repeated keys the last one stays."""
    if _is_object(value):
        return {key: _to_plain(member) for key, member in _members(value)}
    if isinstance(value, list | tuple):
        return [_to_plain(item) for item in value]
    return value


def _token_text(value: object) -> str:
    """How AWS quotes a JSON token in an error message (its text, or the bracket)."""
    if isinstance(value, str):
        return value
    if _is_object(value):
        return "{"
    if _is_array(value):
        return "["
    return json.dumps(value)


# --------------------------------------------------------------------------- numbers


def _comparable(number: object) -> int | None:
    """A number as EventBridge compares it: six decimals, within +/-5e9; else None."""
    if not _is_number(number):
        return None
    assert isinstance(number, int | float)
    try:
        as_float = float(number)
    except OverflowError:
        return None
    if not -_FIVE_BILLION <= as_float <= _FIVE_BILLION:  # also rejects NaN
        return None
    return int(1e6 * (_FIVE_BILLION + as_float))


def _pattern_number(number: object) -> int:
    """The comparable form of a number written in a pattern, or AWS's range error."""
    key = _comparable(number)
    if key is None:
        raise InvalidEventPattern(_NUMBER_RANGE_ERROR)
    return key


def _same_number(pattern: float, value: object) -> bool:
    """Whether an event value equals a number given in the pattern."""
    if not _is_number(value):
        return False
    pattern_key, value_key = _comparable(pattern), _comparable(value)
    if pattern_key is not None and value_key is not None:
        return pattern_key == value_key
    return json.dumps(pattern) == json.dumps(value)  # outside the range: same JSON text


# --------------------------------------------------------------------------- matchers


class _Matcher:
    """One entry of a field's value list; tests one leaf value of the event."""

    def test(self, value: object) -> bool:
        """Whether the leaf value satisfies this entry."""
        raise NotImplementedError


@dataclass(frozen=True)
class _Exists(_Matcher):
    """``{"exists": true|false}``: decided per field, not per value (see _field_candidates)."""

    present: bool

    def test(self, value: object) -> bool:
        """Any leaf value shows that the field exists."""
        return self.present


@dataclass(frozen=True)
class _ExactString(_Matcher):
    """A string value; an IP address also matches other spellings of the same address."""

    text: str
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None

    def test(self, value: object) -> bool:
        """Equal strings, or equal IP addresses."""
        if not isinstance(value, str):
            return False
        if value == self.text:
            return True
        return self.address is not None and _ip_or_none(value) == self.address


@dataclass(frozen=True)
class _ExactNumber(_Matcher):
    """A number value: equal as numbers (so 300 matches 300.0), never a string."""

    number: int | float

    def test(self, value: object) -> bool:
        """Numerically equal (to six decimals)."""
        return _same_number(self.number, value)


@dataclass(frozen=True)
class _ExactLiteral(_Matcher):
    """``true``, ``false`` or ``null``."""

    literal: bool | None

    def test(self, value: object) -> bool:
        """The very same literal (``1`` is not ``true``)."""
        return type(value) is type(self.literal) and value == self.literal


@dataclass(frozen=True)
class _Prefix(_Matcher):
    """``{"prefix": ...}``, optionally ignoring case."""

    prefix: str
    ignore_case: bool

    def test(self, value: object) -> bool:
        """A string that starts with the prefix."""
        if not isinstance(value, str):
            return False
        if self.ignore_case:
            return value.lower().startswith(self.prefix.lower())
        return value.startswith(self.prefix)


@dataclass(frozen=True)
class _Suffix(_Matcher):
    """``{"suffix": ...}``, optionally ignoring case."""

    suffix: str
    ignore_case: bool

    def test(self, value: object) -> bool:
        """A string that ends with the suffix."""
        if not isinstance(value, str):
            return False
        if self.ignore_case:
            return value.lower().endswith(self.suffix.lower())
        return value.endswith(self.suffix)


@dataclass(frozen=True)
class _EqualsIgnoreCase(_Matcher):
    """``{"equals-ignore-case": ...}``."""

    text: str

    def test(self, value: object) -> bool:
        """A string equal to the text in any casing."""
        return isinstance(value, str) and value.lower() == self.text.lower()


@dataclass(frozen=True)
class _Wildcard(_Matcher):
    """``{"wildcard": ...}``: ``*`` matches any run of characters, including none."""

    segments: tuple[str, ...]  # the literal parts between the stars

    def test(self, value: object) -> bool:
        """A string the wildcard pattern matches as a whole."""
        return isinstance(value, str) and _glob_matches(self.segments, value)


@dataclass(frozen=True)
class _Numeric(_Matcher):
    """``{"numeric": [...]}``: a range over comparable numbers; bounds may be open."""

    low: int | None
    low_open: bool
    high: int | None
    high_open: bool

    def test(self, value: object) -> bool:
        """A JSON number (not a boolean, not a numeric string) inside the range."""
        key = _comparable(value)
        if key is None:
            return False
        if self.low is not None and (key < self.low or (self.low_open and key == self.low)):
            return False
        return not (
            self.high is not None and (key > self.high or (self.high_open and key == self.high))
        )


@dataclass(frozen=True)
class _Cidr(_Matcher):
    """``{"cidr": ...}``: an IP address string within the block."""

    version: int
    low: int
    high: int

    def test(self, value: object) -> bool:
        """A string holding an IP address of the same version within [low, high]."""
        if not isinstance(value, str):
            return False
        address = _ip_or_none(value)
        return (
            address is not None
            and address.version == self.version
            and self.low <= int(address) <= self.high
        )


@dataclass(frozen=True)
class _AnythingBut(_Matcher):
    """``{"anything-but": value | [values]}``: any value that equals none of them."""

    strings: frozenset[str]
    numbers: tuple[int | float, ...]

    def test(self, value: object) -> bool:
        """Everything except the listed strings and numbers (``null`` matches too)."""
        if isinstance(value, str):
            return value not in self.strings
        return not any(_same_number(number, value) for number in self.numbers)


@dataclass(frozen=True)
class _AnythingButText(_Matcher):
    """``anything-but`` with ``prefix``, ``suffix``, ``equals-ignore-case`` or ``wildcard``."""

    excluded: tuple[_Matcher, ...]

    def test(self, value: object) -> bool:
        """Every value (also non-strings and ``null``) that no excluded form matches."""
        return not any(matcher.test(value) for matcher in self.excluded)


def _ip_or_none(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address written in ``text``, or None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _glob_matches(segments: tuple[str, ...], text: str) -> bool:
    """Whether ``text`` matches literal ``segments`` separated by ``*``."""
    if len(segments) == 1:
        return text == segments[0]
    first, last = segments[0], segments[-1]
    if len(text) < len(first) + len(last) or not text.startswith(first):
        return False
    if not text.endswith(last):
        return False
    position, end = len(first), len(text) - len(last)
    for segment in segments[1:-1]:
        found = text.find(segment, position, end)
        if found < 0:
            return False
        position = found + len(segment)
    return True


# --------------------------------------------------------------------------- operators


def _wildcard_tokens(text: str) -> _Tokens:
    """Read a wildcard pattern: ``*`` is a wildcard, ``\\*`` and ``\\\\`` are literals.

    Positions in AWS's messages count UTF-8 bytes from the opening quote of the string.
    """
    tokens: list[str | None] = []
    index = 0
    while index < len(text):
        char = text[index]
        position = len(text[:index].encode("utf-8")) + 1
        if char == "*":
            if text[index + 1 : index + 2] == "*":
                raise InvalidEventPattern(f"Consecutive wildcard characters at pos {position}")
            tokens.append(None)  # a wildcard
        elif char == "\\":
            escaped = text[index + 1 : index + 2]
            if escaped not in ("*", "\\"):
                raise InvalidEventPattern(f"Invalid escape character at pos {position}")
            tokens.append(escaped)
            index += 1
        else:
            tokens.append(char)
        index += 1
    return tuple(tokens)


def _wildcard(value: object) -> tuple[_Wildcard, _Tokens]:
    """A ``wildcard`` operand: the matcher and its tokens (for the complexity check)."""
    if not isinstance(value, str):
        raise InvalidEventPattern("wildcard match pattern must be a string")
    tokens = _wildcard_tokens(value)
    segments: list[str] = [""]
    for token in tokens:
        if token is None:
            segments.append("")
        else:
            segments[-1] += token
    return _Wildcard(tuple(segments)), tokens


def _prefix_or_suffix(kind: str, value: object) -> _Matcher:
    """``{"prefix": ...}`` or ``{"suffix": ...}``: a string or ``{"equals-ignore-case": s}``."""
    if _is_object(value):
        members = _members(value)
        if not members:
            raise InvalidEventPattern(f"{kind} match pattern must be a string")
        name, text = members[0]
        if name != "equals-ignore-case":
            raise InvalidEventPattern(f"Unsupported {kind} pattern: {name}")
        if not isinstance(text, str):
            raise InvalidEventPattern("equals-ignore-case match pattern must be a string")
        if len(members) > 1:
            raise InvalidEventPattern("Only one key allowed in match expression")
        return _Prefix(text, True) if kind == "prefix" else _Suffix(text, True)
    if not isinstance(value, str):
        raise InvalidEventPattern(f"{kind} match pattern must be a string")
    return _Prefix(value, False) if kind == "prefix" else _Suffix(value, False)


def _numeric(value: object) -> _Numeric:
    """``{"numeric": [op, n]}`` or ``{"numeric": [">"|">=", n, "<"|"<=", m]}``."""
    if not _is_array(value):
        raise InvalidEventPattern("Value of numeric must be an array.")
    assert isinstance(value, list | tuple)
    terms = list(value)
    if not terms or not isinstance(terms[0], str):
        raise InvalidEventPattern(
            "Invalid member in numeric match: " + (_token_text(terms[0]) if terms else "]")
        )
    operator = terms[0]
    if operator not in ("=", ">", ">=", "<", "<="):
        raise InvalidEventPattern(f"Unrecognized numeric range operator: {operator}")
    if len(terms) < 2 or not _is_number(terms[1]):
        label = "equals" if operator == "=" else operator
        raise InvalidEventPattern(f"Value of {label} must be numeric")
    first = _pattern_number(terms[1])
    if operator == "=":
        if len(terms) > 2:
            raise InvalidEventPattern("Too many elements in numeric expression")
        return _Numeric(first, False, first, False)
    if operator in ("<", "<="):
        if len(terms) > 2:
            raise InvalidEventPattern("Too many elements in numeric expression")
        return _Numeric(None, False, first, operator == "<")
    if len(terms) == 2:
        return _Numeric(first, operator == ">", None, False)
    return _numeric_range(terms[1], operator == ">", terms[2:])


def _numeric_range(low_number: object, low_open: bool, rest: list[object]) -> _Numeric:
    """A two-sided numeric range: ``low_number`` and then ``rest`` = ``[op, m]``."""
    if not isinstance(rest[0], str):
        raise InvalidEventPattern("Bad value in numeric range: " + _token_text(rest[0]))
    operator = rest[0]
    if operator not in ("<", "<="):
        raise InvalidEventPattern(f"Bad numeric range operator: {operator}")
    if len(rest) < 2 or not _is_number(rest[1]):
        raise InvalidEventPattern(f"Value of {operator} must be numeric")
    low, high = _pattern_number(low_number), _pattern_number(rest[1])
    if len(rest) > 2:
        raise InvalidEventPattern("Too many terms in numeric range expression")
    assert isinstance(low_number, int | float) and isinstance(rest[1], int | float)
    if low_number >= rest[1]:
        raise InvalidEventPattern("Bottom must be less than top")
    return _Numeric(low, low_open, high, operator == "<")


def _java_split_slash(text: str) -> list[str]:
    """``text.split("/")`` as Java does it (trailing empty parts dropped)."""
    parts = text.split("/")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _cidr(value: object) -> _Cidr:
    """``{"cidr": "address/bits"}``: an IPv4 or IPv6 block (AWS refuses /32 and /128)."""
    if not isinstance(value, str):
        raise InvalidEventPattern("prefix match pattern must be a string")
    parts = _java_split_slash(value)
    if len(parts) != 2:
        raise InvalidEventPattern("Malformed CIDR, one '/' required")
    address_text, bits_text = parts
    bits_body = bits_text[1:] if bits_text[:1] in ("+", "-") else bits_text
    if not bits_body or not bits_body.isascii() or not bits_body.isdigit():
        raise InvalidEventPattern("Malformed CIDR, mask bits must be an integer")
    bits = int(bits_text)
    if not -(2**31) <= bits < 2**31:
        raise InvalidEventPattern("Malformed CIDR, mask bits must be an integer")
    if bits < 0:
        raise InvalidEventPattern("Malformed CIDR, mask bits must not be negative")
    address = _ip_or_none(address_text)
    if address is None:
        raise InvalidEventPattern(f"Nonstandard IP address: {address_text}")
    if address.version == 4 and bits > 31:
        raise InvalidEventPattern("IPv4 mask bits must be < 32")
    if address.version == 6 and bits > 127:
        raise InvalidEventPattern("IPv6 mask bits must be < 128")
    block = ipaddress.ip_network((address, bits), strict=False)  # host bits cleared
    return _Cidr(block.version, int(block.network_address), int(block.broadcast_address))


def _anything_but(value: object, wildcards: list[_Tokens]) -> _Matcher:
    """``{"anything-but": ...}`` in all its forms."""
    if _is_object(value):
        return _anything_but_object(value, wildcards)
    if isinstance(value, str):
        return _AnythingBut(frozenset({value}), ())
    if _is_number(value):
        assert isinstance(value, int | float)
        _pattern_number(value)
        return _AnythingBut(frozenset(), (value,))
    if _is_array(value):
        return _anything_but_list(value)
    raise InvalidEventPattern(
        "Value of anything-but must be an array or single string/number value."
    )


def _anything_but_list(value: object) -> _AnythingBut:
    """``{"anything-but": [...]}``: all strings or all numbers."""
    assert isinstance(value, list | tuple)
    strings: set[str] = set()
    numbers: list[int | float] = []
    for item in value:
        if isinstance(item, str):
            strings.add(item)
        elif _is_number(item):
            assert isinstance(item, int | float)
            _pattern_number(item)
            numbers.append(item)
        else:
            raise InvalidEventPattern(
                "Inside anything but list, start|null|boolean is not supported."
            )
    if bool(strings) == bool(numbers):
        raise InvalidEventPattern(
            "Inside anything but list, either all values are number or string, "
            "mixed type is not supported"
        )
    return _AnythingBut(frozenset(strings), tuple(numbers))


def _anything_but_object(value: object, wildcards: list[_Tokens]) -> _Matcher:
    """``{"anything-but": {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": ...}}``."""
    members = _members(value)
    if not members:
        raise InvalidEventPattern("Anything-But expression name not found")
    name, operand = members[0]
    if name in ("prefix", "suffix"):
        excluded = _anything_but_affixes(name, operand)
    elif name == "equals-ignore-case":
        excluded = _anything_but_ignore_case(operand)
    elif name == "wildcard":
        excluded = []
        for item in list(operand) if isinstance(operand, list | tuple) else [operand]:
            matcher, tokens = _wildcard(item)
            excluded.append(matcher)
            wildcards.append(tokens)
    else:
        raise InvalidEventPattern(f"Unsupported anything-but pattern: {name}")
    if len(members) > 1:
        if name == "equals-ignore-case":
            raise InvalidEventPattern("Too many elements in numeric expression")
        raise InvalidEventPattern("Only one key allowed in match expression")
    return _AnythingButText(tuple(excluded))


def _anything_but_affixes(kind: str, operand: object) -> list[_Matcher]:
    """The prefixes or suffixes excluded by ``anything-but``."""
    if _is_object(operand):
        raise InvalidEventPattern(
            "Value of anything-but must be an array or single string/number value."
        )
    items = list(operand) if isinstance(operand, list | tuple) else [operand]
    if not items:
        raise InvalidEventPattern("Empty arrays are not allowed")
    excluded: list[_Matcher] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidEventPattern("prefix/suffix match pattern must be a string")
        if not item:
            raise InvalidEventPattern("Null prefix/suffix not allowed")
        excluded.append(_Prefix(item, False) if kind == "prefix" else _Suffix(item, False))
    return excluded


def _anything_but_ignore_case(operand: object) -> list[_Matcher]:
    """The strings excluded by ``anything-but`` / ``equals-ignore-case``."""
    if not (isinstance(operand, str | list | tuple) or _is_number(operand)):
        raise InvalidEventPattern(
            "Value of anything-but must be an array or single string/number value."
        )
    items = list(operand) if isinstance(operand, list | tuple) else [operand]
    excluded: list[_Matcher] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidEventPattern(
                "Inside anything-but/equals-ignore-case list, "
                "number|start|null|boolean is not supported."
            )
        excluded.append(_EqualsIgnoreCase(item))
    return excluded


def _match_expression(expression: object, wildcards: list[_Tokens]) -> _Matcher:
    """One ``{"operator": operand}`` object from a field's value list."""
    members = _members(expression)
    if not members:
        raise InvalidEventPattern("Match expression name not found")
    name, operand = members[0]
    extra_key_error = "Only one key allowed in match expression"
    matcher: _Matcher
    if name in ("prefix", "suffix"):
        matcher = _prefix_or_suffix(name, operand)
    elif name == "equals-ignore-case":
        if not isinstance(operand, str):
            raise InvalidEventPattern("equals-ignore-case match pattern must be a string")
        matcher = _EqualsIgnoreCase(operand)
    elif name == "wildcard":
        matcher, tokens = _wildcard(operand)
        wildcards.append(tokens)
    elif name == "exists":
        if not isinstance(operand, bool):
            raise InvalidEventPattern("exists match pattern must be either true or false.")
        matcher = _Exists(operand)
    elif name == "cidr":
        matcher = _cidr(operand)
    elif name == "numeric":
        matcher = _numeric(operand)
        extra_key_error = "Too many elements in numeric expression"
    elif name == "anything-but":
        matcher = _anything_but(operand, wildcards)
        extra_key_error = "Too many elements in numeric expression"
    else:
        raise InvalidEventPattern(f"Unrecognized match type {name}")
    if len(members) > 1:
        raise InvalidEventPattern(extra_key_error)
    return matcher


def _value_list(values: Sequence[object]) -> tuple[_Matcher, ...]:
    """A field's value list: any entry may match. Also checks wildcard complexity."""
    matchers: list[_Matcher] = []
    wildcards: list[_Tokens] = []
    for item in values:
        if _is_object(item):
            matchers.append(_match_expression(item, wildcards))
        elif isinstance(item, str):
            matchers.append(_ExactString(item, _ip_or_none(item)))
        elif _is_number(item):
            assert isinstance(item, int | float)
            matchers.append(_ExactNumber(item))
        elif item is None or isinstance(item, bool):
            matchers.append(_ExactLiteral(item))
        else:
            raise InvalidEventPattern("Match value must be String, number, true, false, or null")
    if not matchers:
        raise InvalidEventPattern("Empty arrays are not allowed")
    if any(_wildcard_complexity(tokens) > _MAX_WILDCARD_COMPLEXITY for tokens in wildcards):
        raise InvalidEventPattern(_TOO_COMPLEX)
    return tuple(matchers)


# --------------------------------------------------------------------------- complexity


def _wildcard_complexity(tokens: _Tokens) -> int:
    """How many positions of a wildcard pattern one worst-case string keeps alive at once.

    The pattern is read as a small automaton whose states are the positions between its
    tokens (a star keeps its state alive on any character). Every reachable set of live
    states is explored; the answer is the size of the largest. Many stars, and repeated
    character sequences after a star, make it grow: that is what AWS limits.
    """
    alphabet = {token for token in tokens if token is not None}
    alphabet.add(next(chr(code) for code in count(0x100) if chr(code) not in alphabet))
    start = _closure(tokens, {0})
    seen, frontier, largest = {start}, [start], len(start)
    while frontier and len(seen) < _COMPLEXITY_SEARCH_BUDGET:
        states = frontier.pop()
        for char in alphabet:
            following = _closure(tokens, _advance(tokens, states, char))
            if following and following not in seen:
                seen.add(following)
                frontier.append(following)
                largest = max(largest, len(following))
                if largest > _MAX_WILDCARD_COMPLEXITY:
                    return largest
    return largest


def _advance(tokens: _Tokens, states: Iterable[int], char: str) -> set[int]:
    """The live positions after reading one character."""
    following: set[int] = set()
    for position in states:
        if position < len(tokens):
            token = tokens[position]
            if token is None:
                following.add(position)
            elif token == char:
                following.add(position + 1)
    return following


def _closure(tokens: _Tokens, states: set[int]) -> frozenset[int]:
    """Add the positions reachable without reading (a star may match nothing)."""
    pending = list(states)
    while pending:
        position = pending.pop()
        if position < len(tokens) and tokens[position] is None and position + 1 not in states:
            states.add(position + 1)
            pending.append(position + 1)
    return frozenset(states)


# --------------------------------------------------------------------------- compiling

_Branch = dict[str, tuple[_Matcher, ...]]


def _compile(pattern: object) -> list[_Branch]:
    """Validate a parsed pattern; return its alternatives (``$or`` expanded).

    Each alternative maps a dot-joined field name to its value list; all fields of one
    alternative must match.
    """
    if not _is_object(pattern):
        raise InvalidEventPattern("Filter is not an object")
    return _compile_object(pattern, (), [{}], inside_or=False)


def _compile_object(
    node: object, path: tuple[str, ...], branches: list[_Branch], inside_or: bool
) -> list[_Branch]:
    """Add every member of one pattern object to all alternatives, in order."""
    members = _members(node)
    if not members:
        raise InvalidEventPattern("Empty objects are not allowed")
    for name, value in members:
        if name == _OR:
            branches = _compile_or(value, path, branches)
            continue
        if inside_or and name in _OPERATORS:
            raise InvalidEventPattern(
                f"{name} is Ruler reserved fieldName which cannot be used inside $or."
            )
        if _is_object(value):
            branches = _compile_object(value, (*path, name), branches, inside_or)
        elif isinstance(value, list | tuple):
            field = ".".join((*path, name))
            matchers = _value_list(value)
            for branch in branches:
                branch[field] = matchers  # a repeated field: the later one wins
        else:
            raise InvalidEventPattern(f'"{name}" must be an object or an array')
    return branches


def _compile_or(value: object, path: tuple[str, ...], branches: list[_Branch]) -> list[_Branch]:
    """``"$or": [{...}, {...}, ...]``: each object is one alternative."""
    if not isinstance(value, list | tuple):
        raise InvalidEventPattern("It must be an Array followed with $or.")
    alternatives: list[_Branch] = []
    for item in value:
        if not _is_object(item):
            raise InvalidEventPattern("Only JSON object is allowed in array of $or relationship.")
        copies = [dict(branch) for branch in branches]
        alternatives.extend(_compile_object(item, path, copies, inside_or=True))
    if len(value) < 2:
        raise InvalidEventPattern("There must have at least 2 Objects in $or relationship.")
    return alternatives


# --------------------------------------------------------------------------- matching


class _Leaf(NamedTuple):
    """A leaf value of the event and the array elements it sits in."""

    value: object
    trail: tuple[tuple[int, int], ...]  # (array id, element index), outermost first


def _flatten(
    event: Mapping[str, object], fields: frozenset[str] | None = None
) -> dict[str, list[_Leaf]]:
    """Every leaf value of the event under its dot-joined field name; with ``fields``,
    only the leaves on the way to those names (a pattern ignores every other field, so
    the others need not be walked: matching whole stream records and aggregated events
    was a third of the local runtime's CPU)."""
    leaves: dict[str, list[_Leaf]] = {}
    array_ids = count()
    on_the_way = None if fields is None else _prefixes(fields)

    def walk(node: object, path: str | None, trail: tuple[tuple[int, int], ...]) -> None:
        if node is None or isinstance(node, str | int | float):
            leaves.setdefault(path or "", []).append(_Leaf(node, trail))
        elif isinstance(node, Mapping):
            for key, member in node.items():
                name = str(key) if path is None else f"{path}.{key}"
                if on_the_way is None or name in on_the_way:
                    walk(member, name, trail)
        elif isinstance(node, list | tuple):
            array_id = next(array_ids)
            for index, element in enumerate(node):
                walk(element, path, (*trail, (array_id, index)))
        else:
            leaves.setdefault(path or "", []).append(_Leaf(node, trail))

    walk(event, None, ())
    return leaves


def _prefixes(fields: frozenset[str]) -> frozenset[str]:
    """Each field name and every dot-joined name on the way to it."""
    parts = (field.split(".") for field in fields)
    return frozenset(".".join(split[:n]) for split in parts for n in range(1, len(split) + 1))


def _field_candidates(matchers: tuple[_Matcher, ...], leaves: list[_Leaf]) -> list[_Leaf] | None:
    """The leaves that satisfy a field, or None when the field holds without any.

    ``exists: false`` holds when the event has no leaf under that name at all.
    """
    if not leaves and any(isinstance(m, _Exists) and not m.present for m in matchers):
        return None
    return [leaf for leaf in leaves if any(m.test(leaf.value) for m in matchers)]


def _compatible(trail: tuple[tuple[int, int], ...], chosen: dict[int, int]) -> bool:
    """Whether a leaf sits in the same array elements as the leaves chosen so far."""
    return all(chosen.get(array_id, index) == index for array_id, index in trail)


def _choose(candidates: list[list[_Leaf]], chosen: dict[int, int]) -> bool:
    """Pick one leaf per field so that no two come from different elements of one array."""
    if not candidates:
        return True
    first, rest = candidates[0], candidates[1:]
    for leaf in first:
        if _compatible(leaf.trail, chosen):
            added = {array_id: index for array_id, index in leaf.trail if array_id not in chosen}
            chosen.update(added)
            if _choose(rest, chosen):
                return True
            for array_id in added:
                del chosen[array_id]
    return False


def _branch_matches(branch: _Branch, leaves: dict[str, list[_Leaf]]) -> bool:
    """Whether every field of one alternative matches the event."""
    constrained: list[list[_Leaf]] = []
    for field, matchers in branch.items():
        candidates = _field_candidates(matchers, leaves.get(field, []))
        if candidates is None:
            continue
        if not candidates:
            return False
        if all(leaf.trail for leaf in candidates):
            constrained.append(candidates)
    constrained.sort(key=len)
    return _choose(constrained, {})


def _parse_event(event: Mapping[str, object] | str) -> Mapping[str, object]:
    """The event as a dict; AWS requires a JSON object."""
    parsed: object = event
    if isinstance(event, str):
        try:
            parsed = json.loads(event)
        except json.JSONDecodeError:
            raise ValueError("Parameter Event is not valid.") from None
    if isinstance(parsed, Mapping):
        return parsed
    raise ValueError("Parameter Event is not valid.")


# --------------------------------------------------------------------------- public API


def validate(pattern: Mapping[str, object] | str) -> dict[str, object]:
    """Check an event pattern by EventBridge's rules and return it parsed.

    A string is read as raw JSON text, so a key repeated inside one object is seen
    (AWS validates both occurrences and lets the later one win). Raises
    :class:`InvalidEventPattern` with AWS's message when the pattern is not valid.
    Returns a plain ``dict`` copy; of a repeated key only the later value is in it.
    """
    parsed = _parse_pattern_text(pattern) if isinstance(pattern, str) else pattern
    _compile(parsed)
    plain = _to_plain(parsed)
    assert isinstance(plain, dict)
    return plain


def matches(pattern: Mapping[str, object] | str, event: Mapping[str, object] | str) -> bool:
    """Whether the event matches the pattern, as EventBridge decides it.

    The pattern is validated first (:class:`InvalidEventPattern`). The event must be a
    JSON object (a dict, or its JSON text); otherwise ``ValueError`` is raised with
    AWS's ``Parameter Event is not valid.``.
    """
    branches, fields = _compiled(pattern)
    leaves = _flatten(_parse_event(event), fields)
    return any(_branch_matches(branch, leaves) for branch in branches)


def _compiled(pattern: Mapping[str, object] | str) -> tuple[list[_Branch], frozenset[str]]:
    """The pattern's alternatives and the fields they name, compiled once per pattern
    text (the runtime matches the same few rules and filters against every event)."""
    if isinstance(pattern, str):
        return _compiled_text(pattern)
    try:
        text = json.dumps(pattern)
    except (TypeError, ValueError):
        return _compile_fields(pattern)
    return _compiled_json(text)


def _compile_fields(parsed: object) -> tuple[list[_Branch], frozenset[str]]:
    branches = _compile(parsed)
    return branches, frozenset(field for branch in branches for field in branch)


@functools.lru_cache(maxsize=512)
def _compiled_text(text: str) -> tuple[list[_Branch], frozenset[str]]:
    return _compile_fields(_parse_pattern_text(text))


@functools.lru_cache(maxsize=512)
def _compiled_json(text: str) -> tuple[list[_Branch], frozenset[str]]:
    """A pattern given as an object, by its JSON text (objects cannot be cache keys)."""
    return _compile_fields(json.loads(text))
