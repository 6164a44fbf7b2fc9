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

Attention heads: a reshape that splits an axis of ``heads x block`` units into a heads axis and a within-head axis
records a :class:`View` instead of tying the axis to blocks of its heads: the two new axes are classes of their own,
tied as the graph goes (a product ties the within-head axes it contracts and the heads axes it batches), and a
reshape that merges them back makes a new view. :meth:`AxisClasses.settle_views` then decides per split axis: if
its heads class and within-head class are used only by such views, the axis is one permutation that moves whole
heads and reorders units within each (views with the same heads class form a heads group); otherwise the units
within a head stay and the heads move as blocks. Every tensor of the graph is recorded: one that holds a within-head
axis without its heads axis (a sum over heads, a product across them) mixes heads, so its views move heads as
blocks; so do views of one heads class whose heads differ in size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Segment = tuple[int, int]
"""``(element, block)``: ``size(element)`` units of ``block`` consecutive entries."""
Layout = tuple[Segment, ...]
"""An axis as consecutive segments."""


@dataclass(frozen=True)
class View:
    """Element ``flat`` (``heads x block`` units) seen as element ``outer`` (its heads) x ``inner`` (``block`` units
    within a head)."""

    flat: int
    outer: int
    inner: int
    block: int


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
    views: list[View] = field(default_factory=list)
    """Axes split into heads and units within a head (module doc)."""
    tensors: list[tuple[int, ...]] = field(default_factory=list)
    """The elements of every tensor of the graph, for :meth:`settle_views`."""

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

    def cut(self, layout: Layout, lengths: list[int]) -> list[Layout] | None:
        """``layout`` as consecutive parts of ``lengths`` entries: its segments grouped where the cuts fall between
        them, or new elements the whole class takes (every element of it one to one with its root, none fixed);
        None when neither is possible."""
        expanded, parts, start = self.expand(layout), [], 0
        for length in lengths:
            taken, total = [], 0
            while total < length and start < len(expanded):
                taken.append(expanded[start])
                total += self.size[expanded[start][0]] * expanded[start][1]
                start += 1
            if total != length:
                break
            parts.append(tuple(taken))
        else:
            if start == len(expanded):
                return parts
        if len(expanded) != 1 or expanded[0][1] != 1:
            return None
        root = self.find(expanded[0][0])[0]
        family = [e for e in range(len(self.parent)) if e not in self.redirect and self.find(e)[0] == root]
        if self.reasons.get(root) or any(self.find(e)[1] != 1 for e in family):
            return None
        pieces = [self.new(length) for length in lengths]
        for element in family:
            self.redirect[element] = tuple(segment for piece in pieces for segment in piece)
        return pieces

    # attention heads (module doc)
    def view(self, layout: Layout, heads: int, block: int) -> tuple[Layout, Layout] | None:
        """The heads axis and the within-head axis of ``layout`` split into ``heads x block`` units, as a new view;
        None when ``layout`` is not one whole element (the caller then ties it to blocks of a heads axis)."""
        expanded = self.expand(layout)
        if len(expanded) != 1 or expanded[0][1] != 1 or self.size[expanded[0][0]] != heads * block:
            return None
        outer, inner = self.new(heads), self.new(block)
        self.views.append(View(expanded[0][0], outer[0][0], inner[0][0], block))
        return outer, inner

    def within_head(self, layout: Layout) -> bool:
        """Whether ``layout`` is one element tied to the within-head axis of some view."""
        if len(layout) != 1 or layout[0][1] != 1:
            return False
        root = self.find(layout[0][0])[0]
        return any(self.find(view.inner)[0] == root for view in self.views)

    def joined(self, outer: Layout, inner: Layout, where: str) -> Layout:
        """A new axis of ``outer x inner`` units whose view is ``outer`` and ``inner`` (a merge of heads)."""
        heads, block = self.length(outer), self.length(inner)
        flat = self.new(heads * block)
        split = self.view(flat, heads, block)
        assert split is not None
        self.tie(split[0], outer, where)
        self.tie(split[1], inner, where)
        return flat

    def record(self, layouts: list[Layout]) -> None:
        """Note the axes of one tensor of the graph (module doc)."""
        if self.views:
            self.tensors.append(tuple(element for layout in layouts for element, _ in layout))

    def settle_views(self) -> list[tuple[tuple[int, ...], int]]:
        """Decide every view (module doc): the heads groups, as ``(roots of their permutations, block)``."""
        self._tie_equal_views()
        mixed = self._mixed_views()
        while True:
            fallen = [view for view in self.views if view in mixed or not self._free_view(view)]
            if not fallen:
                break
            for view in fallen:  # heads move as blocks, the units within a head stay
                self.tie(((view.flat, 1),), ((view.outer, view.block),), "attention heads")
                self.fix(((view.inner, 1),), "units within an attention head whose order the graph fixes")
            self.views = [view for view in self.views if view not in fallen]
        groups: dict[int, dict[int, None]] = {}
        for view in self.views:
            groups.setdefault(self.find(view.outer)[0], {})[self.find(view.flat)[0]] = None
        return [(tuple(roots), self._block(outer)) for outer, roots in groups.items()]

    def _mixed_views(self) -> set[View]:
        """Views whose within-head class appears in a tensor without their heads class, or whose heads class has
        views of another size."""
        mixed: set[View] = set()
        for elements in self.tensors:
            roots = {self.find(element)[0] for element in elements}
            mixed |= {view for view in self.views
                      if self.find(view.inner)[0] in roots and self.find(view.outer)[0] not in roots}
        sizes: dict[int, set[int]] = {}
        for view in self.views:
            sizes.setdefault(self.find(view.outer)[0], set()).add(view.block)
        return mixed | {view for view in self.views if len(sizes[self.find(view.outer)[0]]) > 1}

    def _tie_equal_views(self) -> None:
        """Views of the same heads and the same within-head class are one permutation."""
        first: dict[tuple[int, int, int], int] = {}
        for view in self.views:
            key = (self.find(view.outer)[0], self.find(view.inner)[0], view.block)
            other = first.setdefault(key, view.flat)
            if self.find(other)[0] != self.find(view.flat)[0]:
                self.tie(((other, 1),), ((view.flat, 1),), "attention heads")

    def _free_view(self, view: View) -> bool:
        """Whether ``view``'s axis can move whole heads and the units within them: its element is a class root's
        units one to one, its heads and within-head classes are free and hold only such views' axes, and every view
        of its class has the same heads and within-head classes."""
        root, block = self.find(view.flat)
        outer, inner = self.find(view.outer)[0], self.find(view.inner)[0]
        if block != 1 or self.reasons.get(root) or self.reasons.get(outer) or self.reasons.get(inner):
            return False
        same_class = [v for v in self.views if self.find(v.flat)[0] == root]
        if any((self.find(v.outer)[0], self.find(v.inner)[0], self.find(v.flat)[1]) != (outer, inner, 1)
               for v in same_class):
            return False
        outers = sum(1 for v in self.views if self.find(v.outer)[0] == outer)
        inners = [v for v in self.views if self.find(v.inner)[0] == inner]
        return (self.members[outer] == outers and self.members[inner] == len(inners)
                and all(self.find(v.flat)[0] == root for v in inners))

    def _block(self, outer: int) -> int:
        return next(view.block for view in self.views if self.find(view.outer)[0] == outer)
