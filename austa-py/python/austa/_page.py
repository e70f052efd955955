"""Pages of a listing and the stream over them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, List, Optional, Type, TypeVar

from ._record import Record

R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class Page(Generic[R]):
    """One page of a listing: the items, and the cursor of the next page (None on the last)."""

    items: List[R]
    next: Optional[str]

    def __iter__(self) -> Iterator[R]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def page_of(cls: Type[R], value: Any) -> Page[R]:
    """A page from the decoded `{"items", "next"}` result."""
    build = cls._from_row
    return Page([build(v) for v in value["items"]], value["next"])


def stream(fetch: Callable[[Optional[str]], Page[R]]) -> Iterator[R]:
    """Yields every item of a listing, one page in memory at a time (memory stays flat however many
    rows there are; the cursor is keyset-based, so rows inserted meanwhile do not shift pages)."""
    after: Optional[str] = None
    while True:
        page = fetch(after)
        yield from page.items
        if page.next is None:
            return
        after = page.next
