"""A small document model written as Markdown and as an HTML fragment.

The model card and the transparency record are built once as :class:`Section` objects
and rendered twice: ``*.md`` for people and version control, an HTML fragment for
report.html. Text may hold ``**bold**``; everything else is escaped in HTML.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

__all__ = ["Section", "Table", "to_html", "to_markdown"]

_BOLD = re.compile(r"\*\*(.+?)\*\*")


@dataclass(frozen=True)
class Table:
    """A table: a header row and rows of text."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = str | list[str] | Table


@dataclass
class Section:
    """A titled section: paragraphs (str), bullet lists (list of str) and tables."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> Section:
        """Append blocks; returns the section."""
        self.blocks.extend(blocks)
        return self


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(title: str, sections: list[Section]) -> str:
    """The document as Markdown (a level-1 title, level-2 sections)."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines.append("| " + " | ".join(map(_md_cell, block.header)) + " |")
                lines.append("|" + "---|" * len(block.header))
                lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in block.rows]
            elif isinstance(block, list):
                lines += [f"- {item}" for item in block]
            else:
                lines.append(block)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _inline(text: str) -> str:
    return _BOLD.sub(r"<strong>\1</strong>", html.escape(text))


def to_html(title: str, sections: list[Section], *, css_class: str) -> str:
    """The document as an HTML fragment in a ``<section class=css_class>``."""
    out = [f'<section class="{css_class}">', f"<h2>{html.escape(title)}</h2>"]
    for section in sections:
        out.append(f"<h3>{html.escape(section.title)}</h3>")
        for block in section.blocks:
            if isinstance(block, Table):
                head = "".join(f"<th>{_inline(h)}</th>" for h in block.header)
                body = "".join(
                    "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                    for row in block.rows
                )
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif isinstance(block, list):
                out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block) + "</ul>")
            else:
                out.append(f"<p>{_inline(block)}</p>")
    out.append("</section>")
    return "\n".join(out)
