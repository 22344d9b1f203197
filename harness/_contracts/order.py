"""The order of a contract's events: a regular expression over type names, compiled to a DFA.

A contract writes the order it allows as a small regular expression whose letters are event
type names -- prefab's is ``start (progress | content)* (done | error)`` -- and this module
compiles it once, when the contract is loaded, into a deterministic automaton.  Checking an
event is then one dictionary lookup: ``transitions[state].get(kind)``.

Syntax: a name is ``[A-Za-z_][A-Za-z0-9_.-]*`` or any text in double quotes (``"[DONE]"``);
juxtaposition is sequence, ``|`` alternation, postfix ``*`` ``+`` ``?`` repetition, and
parentheses group.  The construction is the textbook one -- Thompson's NFA, then the subset
construction -- because an order pattern has a handful of names and the DFA stays tiny; a
pattern that would grow past :data:`MAX_STATES` states is refused rather than compiled.

Besides the pattern, two lists of types change the automaton without cluttering the pattern:
``anywhere`` types (a keep-alive ``ping``) may come between any two events before the end and
do not move it; ``abort`` types (an ``error`` event) may come at any point before the end and
end the stream.  A state is *ended* when it accepts and nothing may follow it: every event
after that is ``seq.after-terminal``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_STATES", "Order", "OrderError", "compile_order"]

#: A pattern whose automaton would have more states than this is refused.
MAX_STATES: Final = 512

_TOKEN: Final = re.compile(r'\s*(?:([A-Za-z_][A-Za-z0-9_.\-]*)|"([^"]*)"|([()|*+?])|(\S))')


class OrderError(ValueError):
    """The pattern cannot be compiled; ``column`` is 1-based (0: not about one place)."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(message)
        self.column = column


# -- parsing: a recursive-descent parser straight into Thompson fragments ----------------------


class _NFA:
    """States are ints; ``eps[s]`` are the epsilon moves, ``moves[s]`` the labelled ones."""

    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.moves: list[list[tuple[str, int]]] = []

    def state(self) -> int:
        self.eps.append([])
        self.moves.append([])
        return len(self.eps) - 1


_Fragment = tuple[int, int]  # (entry state, exit state)


class _Parser:
    def __init__(self, pattern: str, nfa: _NFA) -> None:
        self.tokens = self._tokenize(pattern)
        self.pos = 0
        self.nfa = nfa
        self.names: list[str] = []  # in order of first appearance
        self.end_column = len(pattern) + 1

    @staticmethod
    def _tokenize(pattern: str) -> list[tuple[str, str, int]]:
        """``(kind, text, column)`` triples; kind is ``name`` or the operator itself."""
        out = []
        for m in _TOKEN.finditer(pattern):
            text = m.group(0)
            column = m.start() + len(text) - len(text.lstrip()) + 1
            name, quoted, op, junk = m.groups()
            if junk is not None:
                raise OrderError(
                    f"unexpected {junk!r} (names are letters, digits, _ . -; "
                    'quote anything else: "[DONE]")',
                    column,
                )
            if op is not None:
                out.append((op, op, column))
            elif quoted is not None:
                if not quoted:
                    raise OrderError('an empty quoted name ""', column)
                out.append(("name", quoted, column))
            elif name is not None:
                out.append(("name", name, column))
        return out

    def _peek(self) -> str:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else ""

    def _column(self) -> int:
        return self.tokens[self.pos][2] if self.pos < len(self.tokens) else self.end_column

    def parse(self) -> _Fragment:
        if not self.tokens:
            raise OrderError("the pattern is empty")
        frag = self._alternation()
        if self.pos < len(self.tokens):
            raise OrderError(f"unexpected {self.tokens[self.pos][1]!r}", self._column())
        return frag

    def _alternation(self) -> _Fragment:
        branches = [self._sequence()]
        while self._peek() == "|":
            self.pos += 1
            branches.append(self._sequence())
        if len(branches) == 1:
            return branches[0]
        entry, exit_ = self.nfa.state(), self.nfa.state()
        for b_in, b_out in branches:
            self.nfa.eps[entry].append(b_in)
            self.nfa.eps[b_out].append(exit_)
        return entry, exit_

    def _sequence(self) -> _Fragment:
        if self._peek() in ("", "|", ")"):
            raise OrderError("expected a type name or '(' here", self._column())
        entry, exit_ = self._repeat()
        while self._peek() not in ("", "|", ")"):
            nxt_in, nxt_out = self._repeat()
            self.nfa.eps[exit_].append(nxt_in)
            exit_ = nxt_out
        return entry, exit_

    def _repeat(self) -> _Fragment:
        frag = self._atom()
        while self._peek() in ("*", "+", "?"):
            op = self.tokens[self.pos][0]
            self.pos += 1
            frag = self._apply(op, frag)
        return frag

    def _apply(self, op: str, frag: _Fragment) -> _Fragment:
        inner_in, inner_out = frag
        entry, exit_ = self.nfa.state(), self.nfa.state()
        self.nfa.eps[entry].append(inner_in)
        self.nfa.eps[inner_out].append(exit_)
        if op in ("*", "?"):
            self.nfa.eps[entry].append(exit_)
        if op in ("*", "+"):
            self.nfa.eps[inner_out].append(inner_in)
        return entry, exit_

    def _atom(self) -> _Fragment:
        kind = self._peek()
        if kind == "(":
            self.pos += 1
            frag = self._alternation()
            if self._peek() != ")":
                raise OrderError("a '(' is never closed", self._column())
            self.pos += 1
            return frag
        if kind == "name":
            name = self.tokens[self.pos][1]
            self.pos += 1
            if name not in self.names:
                self.names.append(name)
            entry, exit_ = self.nfa.state(), self.nfa.state()
            self.nfa.moves[entry].append((name, exit_))
            return entry, exit_
        raise OrderError(f"unexpected {self.tokens[self.pos][1]!r}", self._column())


# -- the subset construction -------------------------------------------------------------------


def _closure(nfa: _NFA, states: Iterable[int]) -> frozenset[int]:
    seen = set(states)
    stack = list(seen)
    while stack:
        for t in nfa.eps[stack.pop()]:
            if t not in seen:
                seen.add(t)
                stack.append(t)
    return frozenset(seen)


def _determinize(nfa: _NFA, entry: int, exit_: int) -> tuple[list[dict[str, int]], set[int]]:
    start = _closure(nfa, [entry])
    ids = {start: 0}
    transitions: list[dict[str, int]] = [{}]
    todo = deque([start])
    while todo:
        current = todo.popleft()
        targets: dict[str, set[int]] = {}
        for s in current:
            for name, t in nfa.moves[s]:
                targets.setdefault(name, set()).add(t)
        for name, group in targets.items():
            nxt = _closure(nfa, group)
            if nxt not in ids:
                if len(ids) >= MAX_STATES:
                    raise OrderError(
                        f"the pattern needs more than {MAX_STATES} states; simplify it"
                    )
                ids[nxt] = len(transitions)
                transitions.append({})
                todo.append(nxt)
            transitions[ids[current]][name] = ids[nxt]
    accepting = {i for subset, i in ids.items() if exit_ in subset}
    return transitions, accepting


def _minimize(
    transitions: list[dict[str, int]], accepting: set[int]
) -> tuple[list[dict[str, int]], set[int]]:
    """Moore's partition refinement: merge states no event sequence can tell apart.

    The subset construction leaves "after progress" and "after content" as two states of
    prefab's order; merged, every state is one place in the order, which keeps the recovery
    after an order violation (and the tests of it) simple.
    """
    names = sorted({name for moves in transitions for name in moves})
    group = [int(s in accepting) for s in range(len(transitions))]
    while True:
        signatures = [
            (
                group[s],
                *(group[t] if (t := transitions[s].get(n)) is not None else -1 for n in names),
            )
            for s in range(len(transitions))
        ]
        numbering: dict[tuple[int, ...], int] = {}
        for sig in [signatures[0], *signatures]:  # the start state's class comes first: 0
            numbering.setdefault(sig, len(numbering))
        refined = [numbering[sig] for sig in signatures]
        if len(numbering) == len(set(group)):
            break
        group = refined
    merged: list[dict[str, int]] = [{} for _ in range(len(numbering))]
    for s, moves in enumerate(transitions):
        merged[refined[s]] = {n: refined[t] for n, t in moves.items()}
    return merged, {refined[s] for s in accepting}


# -- the compiled order ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order:
    """A compiled order: state 0 is the start; a missing transition means "not allowed"."""

    pattern: str
    names: tuple[str, ...]  # every type the pattern (or anywhere/abort) mentions
    transitions: tuple[dict[str, int], ...]
    accepting: frozenset[int]
    ended: frozenset[int]  # accepting states nothing may follow
    anywhere: frozenset[str]
    abort: frozenset[str]
    #: Types the pattern allows only as the stream's first event (prefab's ``start``).
    only_first: frozenset[str]

    def step(self, state: int, kind: str) -> int | None:
        return self.transitions[state].get(kind)

    def expected(self, state: int | Iterable[int], rank: Sequence[str]) -> list[str]:
        """The pattern's types allowed in ``state`` (or any of several), ordered by ``rank``.

        Anywhere and abort types are left out: they are allowed everywhere, so listing them
        in every message would only hide what the pattern wants.
        """
        states = [state] if isinstance(state, int) else state
        allowed = {name for s in states for name in self.transitions[s]}
        return sorted(allowed - self.anywhere - self.abort, key=_ranker(rank))

    def ending(self, rank: Sequence[str]) -> list[str]:
        """The types that can end a stream (lead into an accepting state), ordered by ``rank``."""
        found = {
            name
            for moves in self.transitions
            for name, t in moves.items()
            if t in self.accepting and name not in self.anywhere
        }
        return sorted(found, key=_ranker(rank))

    def recover(self, state: int, kind: str) -> int | None:
        """Where to continue after ``kind`` came where it is not allowed.

        The nearest state reachable from ``state`` that allows ``kind``, as if the events in
        between had been skipped: a stream that begins with ``content`` is then checked as if
        its ``start`` were missing, not rejected event after event.  ``None``: ``kind`` cannot
        come any more (a second ``start``), so the state stays where it is.
        """
        seen = {state}
        queue = deque([state])
        while queue:
            s = queue.popleft()
            target = self.transitions[s].get(kind)
            if target is not None:
                return target
            for t in self.transitions[s].values():
                if t not in seen:
                    seen.add(t)
                    queue.append(t)
        return None


def _ranker(rank: Sequence[str]) -> Callable[[str], tuple[int, str]]:
    position = {name: i for i, name in enumerate(rank)}
    return lambda name: (position.get(name, len(position)), name)


def compile_order(pattern: str, anywhere: Iterable[str] = (), abort: Iterable[str] = ()) -> Order:
    """Compile ``pattern``; raises :class:`OrderError` with the column of a syntax error."""
    nfa = _NFA()
    parser = _Parser(pattern, nfa)
    entry, exit_ = parser.parse()
    transitions, accepting = _minimize(*_determinize(nfa, entry, exit_))
    ended = {s for s in range(len(transitions)) if s in accepting and not transitions[s]}
    targets = {t for moves in transitions for t in moves.values()}
    only_first = frozenset(
        name for name in transitions[0] if not any(name in transitions[s] for s in targets)
    )
    anywhere, abort = frozenset(anywhere), frozenset(abort)
    for both in sorted(anywhere & abort):
        raise OrderError(f"{both!r} cannot be both an anywhere type and an abort type")
    open_states = [s for s in range(len(transitions)) if s not in ended]
    if abort:
        aborted = len(transitions)
        transitions.append({})
        accepting.add(aborted)
        ended.add(aborted)
        for s in open_states:
            for name in abort:
                transitions[s].setdefault(name, aborted)
    for s in open_states:
        for name in anywhere:
            transitions[s].setdefault(name, s)
    names = [
        *parser.names,
        *(n for n in (*sorted(anywhere), *sorted(abort)) if n not in parser.names),
    ]
    return Order(
        pattern=pattern,
        names=tuple(names),
        transitions=tuple(transitions),
        accepting=frozenset(accepting),
        ended=frozenset(ended),
        anywhere=anywhere,
        abort=abort,
        only_first=only_first - anywhere - abort,
    )
