"""Classes of tied axes: which tensor axes of a traced network must be permuted alike, and which must stay.

Every axis of every tensor in the graph (activations and state-dict entries) is described by a :data:`Layout`: a
sequence of segments ``(element, block)``, each spanning ``size(element) * block`` consecutive entries. An axis
acted on whole is one segment ``(e, 1)``; an axis flattened from ``(C, H, W)`` is ``(c, H * W)``; a concatenation
of channels lists one segment per part.

Elements form a weighted union-find: ``find(e) = (root, B)`` says that unit ``u`` of ``root`` is entries
``[u * B, (u + 1) * B)`` of ``e``. :meth:`AxisClasses.tie` records that two layouts name the same entries and so
must be permuted alike; :meth:`AxisClasses.fix` that a class must stay in place, with the reason (the op that
fixes it), which the spec's report shows. An element that nothing is tied to yet takes the other side's layout
whole when their segmentations differ (a Linear's input axis after a concatenation); any other tie that layouts
cannot express (different segmentations, block sizes that do not divide) fixes both sides: leaving units in place
never changes the function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Segment = tuple[int, int]
"""``(element, block)``: ``size(element)`` units of ``block`` consecutive entries."""
Layout = tuple[Segment, ...]
"""An axis as consecutive segments."""


@dataclass
class AxisClasses:
    """Weighted union-find over axis elements (module doc)."""

    parent: list[int] = field(default_factory=list)
    block: list[int] = field(default_factory=list)
    """``block[e]``: entries of ``e`` per unit of ``parent[e]``."""
    size: list[int] = field(default_factory=list)
    """Units of each element."""
    reasons: dict[int, list[str]] = field(default_factory=dict)
    """Root -> why its class stays in place (empty: it may be permuted)."""
    members: dict[int, int] = field(default_factory=dict)
    """Root -> number of elements in its class."""
    redirect: dict[int, Layout] = field(default_factory=dict)
    """Element -> the layout it took whole (see :meth:`expand`)."""

    def new(self, size: int) -> Layout:
        """A fresh axis of ``size`` units, tied to nothing yet."""
        self.parent.append(len(self.parent))
        self.block.append(1)
        self.size.append(size)
        self.members[len(self.parent) - 1] = 1
        return ((len(self.parent) - 1, 1),)

    def find(self, element: int) -> tuple[int, int]:
        """``(root, B)``: unit ``u`` of ``root`` is entries ``[u * B, (u + 1) * B)`` of ``element``."""
        path = []
        while self.parent[element] != element:
            path.append(element)
            element = self.parent[element]
        root, total = element, 1
        for node in reversed(path):  # compress: point every node of the path at the root
            total *= self.block[node]
            self.parent[node], self.block[node] = root, total
        return root, (self.block[path[0]] if path else 1)

    def length(self, layout: Layout) -> int:
        return sum(self.size[e] * b for e, b in layout)

    def fix(self, layout: Layout, reason: str) -> None:
        """Keep every class of ``layout`` in place, because of ``reason``."""
        for element, _ in self.expand(layout):
            self.reasons.setdefault(self.find(element)[0], []).append(reason)

    def expand(self, layout: Layout) -> Layout:
        """``layout`` with every element that took another layout replaced by it (blocks multiplied)."""
        out: list[Segment] = []
        for element, block in layout:
            if element in self.redirect:
                out += [(e, b * block) for e, b in self.expand(self.redirect[element])]
            else:
                out.append((element, block))
        return tuple(out)

    def tie(self, first: Layout, second: Layout, where: str) -> None:
        """``first`` and ``second`` are the same entries of one axis: permute them alike (module doc)."""
        first, second = self.expand(first), self.expand(second)
        if len(first) != len(second):
            for one, other in ((first, second), (second, first)):
                if self._fresh(one):
                    self.redirect[one[0][0]] = other
                    return
        if len(first) == len(second) and all(self.size[a] * x == self.size[b] * y
                                              for (a, x), (b, y) in zip(first, second, strict=True)):
            for (a, x), (b, y) in zip(first, second, strict=True):
                self._tie_segments(a, x, b, y, where)
            return
        reason = f"{where} joins axes split into different parts"
        self.fix(first, reason)
        self.fix(second, reason)

    def _tie_segments(self, a: int, x: int, b: int, y: int, where: str) -> None:
        (ra, ba), (rb, bb) = self.find(a), self.find(b)
        x, y = ba * x, bb * y  # segment a is blocked(ra, x), segment b is blocked(rb, y)
        if ra == rb:
            if x != y:
                self.fix(((ra, 1),), f"{where} ties an axis to itself in blocks of {x} and {y}")
            return
        if y % x == 0:  # blocked(ra, x) == blocked(rb, y): ra is blocked(rb, y / x)
            self._attach(ra, rb, y // x)
        elif x % y == 0:
            self._attach(rb, ra, x // y)
        else:
            reason = f"{where} ties blocks of {x} entries to blocks of {y}"
            self.fix(((ra, 1),), reason)
            self.fix(((rb, 1),), reason)

    def _attach(self, child: int, root: int, block: int) -> None:
        self.parent[child], self.block[child] = root, block
        self.members[root] += self.members.pop(child)
        moved = self.reasons.pop(child, [])
        if moved:
            self.reasons.setdefault(root, []).extend(moved)

    def _fresh(self, layout: Layout) -> bool:
        """Whether ``layout`` is one element that nothing is tied to yet (it can take another layout whole)."""
        if len(layout) != 1 or layout[0][1] != 1:
            return False
        element = layout[0][0]
        return self.parent[element] == element and self.members[element] == 1 and not self.reasons.get(element)
