"""What the UBL and Factur-X (CII) parsers share: safe XML parsing and the seller look-up."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

# A supplier's file is untrusted: no DTD, no entity expansion, no network, no huge trees.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
CREDIT_NOTE_TYPE_CODES = frozenset({"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"})


class Unparseable(Exception):
    """The whole document is refused: `reason` says why, `record_key` names it when known."""

    def __init__(self, reason: str, record_key: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.record_key = record_key


def parse_xml(data: bytes) -> etree._Element:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise Unparseable(f"not well-formed XML: {exc}") from None
    if root is None:
        raise Unparseable("empty XML document")
    return root


def text(node: etree._Element | None, path: str, ns: dict[str, str]) -> str | None:
    """Stripped text of the first match of `path` under `node`, None when absent or empty."""
    if node is None:
        return None
    found = node.find(path, ns)
    value = (found.text or "").strip() if found is not None else ""
    return value or None


def first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def _compact(value: str) -> str:
    """VAT numbers and identifiers are written with or without spaces, dots and dashes."""
    return re.sub(r"[^0-9A-Z]", "", value.upper())


def _name(value: str) -> str:
    return " ".join(value.casefold().split())


@dataclass(frozen=True)
class SupplierDirectory:
    """app.suppliers as the seller look-up of UBL and CII documents needs it."""

    codes: frozenset[str]
    by_identifier: dict[str, str]  # compacted VAT number or supplier code -> supplier_code
    by_name: dict[str, str]

    @classmethod
    def of(cls, rows: Iterable[tuple[str, str, str | None]]) -> SupplierDirectory:
        """From (supplier_code, name, vat_number) rows."""
        rows = list(rows)
        by_identifier = {_compact(code): code for code, _, _ in rows}
        by_identifier.update({_compact(vat): code for code, _, vat in rows if vat})
        return cls(frozenset(code for code, _, _ in rows), by_identifier, {_name(n): code for code, n, _ in rows})

    def resolve(self, identifiers: Iterable[str | None], names: Iterable[str | None], number: str | None) -> str:
        """The supplier_code of a seller: identifiers (VAT number, our code) first, then names."""
        identifiers, names = [i for i in identifiers if i], [n for n in names if n]
        for identifier in identifiers:
            if _compact(identifier) in self.by_identifier:
                return self.by_identifier[_compact(identifier)]
        for name in names:
            if _name(name) in self.by_name:
                return self.by_name[_name(name)]
        seller = ", ".join([*(repr(i) for i in identifiers), *(repr(n) for n in names)]) or "none given"
        raise Unparseable(
            f"seller: no supplier of the reference (reference/suppliers.csv) has this identifier, VAT number "
            f"or name ({seller})",
            number,
        )
