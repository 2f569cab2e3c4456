"""A small document of blocks rendered both to Markdown and to self-contained HTML.

Blocks: headings ``h1``-``h3``, paragraphs ``p``, bullet lists ``ul``,
preformatted ``pre``, images ``img`` (a PNG path relative to the report folder,
embedded in the HTML as a base64 data URI) and ``table``. Text may use
Markdown's backquotes for code and double asterisks for bold.
"""

from __future__ import annotations

import base64
import html
import os
import re

CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}tr:nth-child(even){background:#fafafa}"
    "img{max-width:100%;height:auto;border:1px solid #eee}figure{margin:1em 0}"
    "figcaption{color:#666;font-size:0.85em}pre{background:#f6f6f6;padding:0.8em;overflow-x:auto}"
    "code{background:#f3f3f3;padding:0 3px}"
)


def inline(text) -> str:
    """HTML of one line of text: escaped, with backquoted spans as ``<code>``, ``**...**`` as ``<strong>``
    and ``[text](relative/path)`` as a link."""
    text = html.escape(str(text))
    text = re.sub(r"\[([^\]]+)\]\(([^)\s:]+)\)", r'<a href="\2">\1</a>', text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


class Document:
    """Blocks added in order, rendered by :meth:`markdown` and :meth:`html`.

    Example:
        >>> doc = Document(); doc.add("h1", "Title"); doc.add("table", ["a", "b"], [[1, 2]])
        >>> doc.markdown().splitlines()[0]
        '# Title'
    """

    def __init__(self):
        self.blocks = []

    def add(self, kind, *args):
        """Append a block: ``(kind, text)``, ``("ul", items)``, ``("img", path, caption)`` or ``("table", header, rows)``."""
        self.blocks.append((kind, *args))

    def markdown(self) -> str:
        out = []
        for kind, *a in self.blocks:
            if kind in ("h1", "h2", "h3"):
                out.append("#" * int(kind[1]) + " " + a[0])
            elif kind == "p":
                out.append(a[0])
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in a[0]))
            elif kind == "pre":
                out.append("```\n" + a[0] + "\n```")
            elif kind == "img":
                out.append(f"![{a[1]}]({a[0]})")
            elif kind == "table":
                header, rows = a
                lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
                lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
                out.append("\n".join(lines))
        return "\n\n".join(out) + "\n"

    def html(self, base_dir, title) -> str:
        """One HTML file with the images of ``base_dir`` embedded (it needs no other file to display)."""
        body = []
        for kind, *a in self.blocks:
            if kind in ("h1", "h2", "h3"):
                body.append(f"<{kind}>{inline(a[0])}</{kind}>")
            elif kind == "p":
                body.append(f"<p>{inline(a[0])}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in a[0]) + "</ul>")
            elif kind == "pre":
                body.append(f"<pre>{html.escape(a[0])}</pre>")
            elif kind == "img":
                body.append(_figure_html(os.path.join(base_dir, a[0]), a[1]))
            elif kind == "table":
                header, rows = a
                head = "".join(f"<th>{inline(h)}</th>" for h in header)
                trs = "".join("<tr>" + "".join(f"<td>{inline(str(c))}</td>" for c in r) + "</tr>" for r in rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n"
        )


def _figure_html(path, caption) -> str:
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")
