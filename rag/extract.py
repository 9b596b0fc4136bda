"""HTML to structured text: title, language, sections of paragraphs and outgoing links.

Page text is data. It is collected and normalised here, never interpreted or executed.
"""

import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from talia.text import collapse_whitespace

# Elements whose content is never page text: code, chrome around the content, controls.
DROPPED_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "template")
HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4"})
PARAGRAPH_TAGS = frozenset({"p", "li", "td", "th", "blockquote", "pre", "dt", "dd", "h5", "h6", "figcaption"})
# Layout blocks: they hold no paragraph of their own, but text on either side of one is a different paragraph.
BLOCK_TAGS = frozenset(
    {"div", "section", "article", "main", "ul", "ol", "dl", "table", "thead", "tbody", "tfoot", "tr", "figure", "hr"}
)

# Common words of one language and not the other. Word lists read best as text.
SPANISH_STOPWORDS = frozenset(
    "el la los las del que y en un una por con para es son se al lo como más pero sus su está este esta "  # noqa: SIM905
    "también muy sin sobre entre cuando donde nuestro nuestra usted".split()
)
ENGLISH_STOPWORDS = frozenset(
    "the and of to in is that for it with as was on are be this by from or an not have you your we our "  # noqa: SIM905
    "which will can at has they".split()
)
# Below this many stopword hits the text is too short to guess its language.
MIN_LANGUAGE_EVIDENCE = 3
WORD_RE = re.compile(r"[a-záéíóúüñ]+")


@dataclass
class Section:
    """A heading (empty before the first one) and the paragraphs under it, in document order."""

    heading: str
    paragraphs: list[str] = field(default_factory=list)


@dataclass
class ExtractedPage:
    """What an HTML page says, without its markup."""

    url: str
    title: str
    language: str
    sections: list[Section]
    links: list[str]

    @property
    def text(self) -> str:
        """Headings and paragraphs, one per line, sections separated by a blank line."""
        blocks = [
            "\n".join(([section.heading] if section.heading else []) + section.paragraphs) for section in self.sections
        ]
        return "\n\n".join(block for block in blocks if block)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the whitespace-normalised text: markup or layout changes alone keep the same hash."""
        return hashlib.sha256(collapse_whitespace(self.text).encode()).hexdigest()


def extract(html: str, url: str) -> ExtractedPage:
    """Parse `html` fetched from `url` into an `ExtractedPage`."""
    tree = LexborHTMLParser(html)
    links = _links(tree, url)  # before anything is dropped: navigation is how a crawler finds pages
    title = _title(tree)
    for tag in DROPPED_TAGS:
        # Innermost first: removing an element frees its descendants, which must not be visited after.
        for node in reversed(tree.css(tag)):
            # An <article>'s own header holds its title and byline, unlike the site-wide banner.
            if tag in ("header", "footer") and _has_ancestor(node, "article"):
                continue
            node.decompose()
    sections = _SectionBuilder().build(_content_root(tree))
    language = _declared_language(tree)
    if language is None:
        language = guess_language(
            " ".join(text for section in sections for text in [section.heading, *section.paragraphs])
        )
    return ExtractedPage(url=url, title=title, language=language, sections=sections, links=links)


def guess_language(text: str) -> str:
    """Tell Spanish ("es") from English ("en") by counting common words; "" when unsure."""
    words = WORD_RE.findall(text.lower())
    spanish = sum(word in SPANISH_STOPWORDS for word in words)
    english = sum(word in ENGLISH_STOPWORDS for word in words)
    if max(spanish, english) < MIN_LANGUAGE_EVIDENCE or spanish == english:
        return ""
    return "es" if spanish > english else "en"


def _links(tree: LexborHTMLParser, url: str) -> list[str]:
    base_node = tree.css_first("base[href]")
    base = urljoin(url, (base_node.attributes.get("href") or "").strip()) if base_node else url
    links: dict[str, None] = {}  # an ordered set
    for anchor in tree.css("a[href]"):
        href = (anchor.attributes.get("href") or "").strip()
        absolute = urldefrag(urljoin(base, href)).url
        if urlsplit(absolute).scheme in ("http", "https"):
            links[absolute] = None
    return list(links)


def _title(tree: LexborHTMLParser) -> str:
    for selector in ("title", "h1"):
        node = tree.css_first(selector)
        if node and (title := collapse_whitespace(node.text())):
            return title
    return ""


def _declared_language(tree: LexborHTMLParser) -> str | None:
    """The language of <html lang>: "es", "en", "" for any other, None when not declared."""
    html = tree.css_first("html")
    declared = (html.attributes.get("lang") or "").strip().lower() if html else ""
    if not declared:
        return None
    primary = declared.replace("_", "-").split("-")[0]
    return primary if primary in ("es", "en") else ""


def _has_ancestor(node: LexborNode, tag: str) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag == tag:
            return True
        parent = parent.parent
    return False


def _content_root(tree: LexborHTMLParser) -> LexborNode | None:
    """<main>, else the page's only <article> (several are a listing: keep them all), else <body>."""
    main = tree.css_first("main")
    if main:
        return main
    articles = tree.css("article")
    return articles[0] if len(articles) == 1 else tree.body


class _SectionBuilder:
    """Walks the content in document order, splitting it into sections at headings.

    Text outside paragraph elements (for instance directly inside a <div>) also forms paragraphs,
    bounded by layout blocks, so that pages built from bare <div>s are not lost.
    """

    def __init__(self) -> None:
        self.sections = [Section(heading="")]
        self.inline: list[str] = []

    def build(self, root: LexborNode | None) -> list[Section]:
        if root is not None:
            self._walk(root)
        self._end_paragraph()
        return [section for section in self.sections if section.heading or section.paragraphs]

    def _walk(self, node: LexborNode) -> None:
        for child in node.iter(include_text=True):
            tag = child.tag
            if tag == "-text":
                self.inline.append(child.text_content or "")
            elif tag == "br":
                self.inline.append(" ")
            elif tag in HEADING_TAGS:
                self._end_paragraph()
                if heading := collapse_whitespace(child.text()):
                    self.sections.append(Section(heading=heading))
            elif tag in PARAGRAPH_TAGS or tag in BLOCK_TAGS:
                self._end_paragraph()
                self._walk(child)
                self._end_paragraph()
            elif tag and not tag.startswith("-"):  # comments and doctypes carry no text
                self._walk(child)

    def _end_paragraph(self) -> None:
        if paragraph := collapse_whitespace("".join(self.inline)):
            self.sections[-1].paragraphs.append(paragraph)
        self.inline = []
