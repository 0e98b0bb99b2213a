"""The admin app's navigation: each page module registers its item at import; a page
shows the items the user's role may see, grouped by section."""

from __future__ import annotations

from dataclasses import dataclass

from domain.users import Role, at_least

SECTIONS = ("Routing", "Leads", "Reports", "Admin")


@dataclass(frozen=True)
class NavItem:
    section: str
    title: str
    path: str
    role: Role
    order: int


@dataclass(frozen=True)
class NavSection:
    title: str
    items: tuple[NavItem, ...]


_ITEMS: dict[str, NavItem] = {}


def register(
    section: str, title: str, path: str, role: Role = Role.viewer, order: int = 100
) -> None:
    """Add a page to the navigation (a path registered again replaces its item)."""
    _ITEMS[path] = NavItem(section, title, path, Role(role), order)


def for_role(role: Role) -> list[NavSection]:
    """The sections with the items ``role`` may see, in order; empty sections left out."""
    sections = list(SECTIONS) + sorted({i.section for i in _ITEMS.values()} - set(SECTIONS))
    out = []
    for section in sections:
        items = sorted(
            (i for i in _ITEMS.values() if i.section == section and at_least(role, i.role)),
            key=lambda i: (i.order, i.title),
        )
        if items:
            out.append(NavSection(section, tuple(items)))
    return out


def is_active(item: NavItem, path: str) -> bool:
    """Whether ``path`` is the item's page or one below it."""
    return path == item.path or path.startswith(item.path.rstrip("/") + "/")
