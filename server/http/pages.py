"""Pages a person reads, rendered on the server: the engine documentation (what the cards' source and dossier links
open), the sibling-engine hand-offs, the card topics, the card gallery and the feedback analytics.
Machine-readable forms stay available: `/docs/<name>.md`, and JSON by `Accept: application/json`."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, Response, render_template, request
from markdown_it import MarkdownIt

from cql_equivalents.tables import tables
from hooks.cards.topics import TOPIC_SYSTEM, topics

from server.http import analytics
from server.http.errors import ApiError, operation_outcome
from server.http.gallery import Gallery, GalleryBusy, order_summary
from server.http.jsonio import dumps

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
ENGINE_ID = "pulm.massive-hemoptysis.v1"
# Raw HTML in the Markdown is not passed through (card details quote record text); tables as GitHub writes them.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_DOC_LINK = re.compile(r'href="([a-z0-9-]+)\.md(#[^"]*)?"')
_INDICATOR_LABEL = {"critical": "Critical", "warning": "Warning", "info": "Info"}


_HEADING_TAG = re.compile(r"<h([2-4])>(.*?)</h\1>", re.S)  # sections (h2-h4): the page title keeps its plain <h1>


def heading_anchor(heading: str) -> str:
    """The anchor of a heading: its words before any parenthesis, lower case, joined by hyphens
    ("The 12 phases (`dossier.toml`)" -> "the-12-phases"), so a card can link to one section."""
    words = re.sub(r"[^a-z0-9 ]", "", re.sub(r"<[^>]+>", "", heading).split(" (")[0].lower())
    return "-".join(words.split())


def render_markdown(text: str) -> str:
    """Markdown as HTML, each heading with its anchor; links between the docs (`cards.md`) point at their pages
    (`/docs/cards`)."""
    rendered = _HEADING_TAG.sub(lambda m: f'<h{m.group(1)} id="{heading_anchor(m.group(2))}">{m.group(2)}</h{m.group(1)}>',
                                _markdown.render(text))
    return _DOC_LINK.sub(lambda m: f'href="/docs/{m.group(1)}{m.group(2) or ""}"', rendered)


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _doc_names() -> list[str]:
    return sorted(p.stem for p in DOCS_DIR.glob("*.md")) if DOCS_DIR.is_dir() else []


def create_pages(settings, store, require_audit_reader: Callable[[], None], make_app: Callable) -> Blueprint:
    pages = Blueprint("pages", __name__, template_folder="templates")
    gallery = Gallery(settings, make_app)  # make_app: create_app, for the gallery's private instance
    pages.gallery = gallery  # reachable as app.blueprints["pages"].gallery
    pages.app_template_filter("markdown")(render_markdown)
    pages.app_template_global("order_summary")(order_summary)
    pages.app_template_global("indicator_label")(lambda indicator: _INDICATOR_LABEL.get(indicator, indicator))

    def doc_path(name: str) -> Path:
        if name not in _doc_names():  # only the files of docs/, by name: no path reaches the file system
            raise ApiError(404, f"no document '{name}'; GET /docs lists them")
        return DOCS_DIR / f"{name}.md"

    @pages.get("/")
    @pages.get("/docs")
    def index():
        return render_template("index.html", docs=_doc_names(), engines=tables().sibling_engines)

    @pages.get("/docs/<name>")
    def document(name: str):
        text = doc_path(name).read_text(encoding="utf-8")
        title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("# ")), name)
        return render_template("document.html", title=title.replace("`", ""), body=render_markdown(text), name=name)

    @pages.get("/docs/<name>.md")
    def document_source(name: str):
        return Response(doc_path(name).read_text(encoding="utf-8"), mimetype="text/markdown")

    @pages.get("/engines/<engine_id>")
    def sibling_engine(engine_id: str):
        engine = tables().sibling_engines.get(engine_id)
        if engine is None:
            raise ApiError(404, f"no sibling engine '{engine_id}' in the dossier")
        handoff = {"id": engine_id, "title": engine["title"], "handoff": engine["handoff"],
                   "source": engine["source"], "from": ENGINE_ID}
        if _wants_json():
            return Response(dumps(handoff), mimetype="application/json")
        # the conditions on record whose card links here (conditions.toml `sibling`)
        causes = sorted({c.label for c in (*tables().snomed_to_condition.values(), *tables().icd10_to_condition.values())
                         if c.sibling == engine_id})
        return render_template("engine.html", engine=handoff, causes=causes)

    @pages.get("/topics")
    def topic_list():
        listed = {"system": TOPIC_SYSTEM, "topics": topics()}
        if _wants_json():
            return Response(dumps(listed), mimetype="application/json")
        return render_template("topics.html", **listed)

    @pages.get("/gallery")
    def card_gallery():
        family = request.args.get("family") or None
        families = gallery.families()
        if family is not None and family not in families:
            raise ApiError(404, f"no scenario family '{family}'; /gallery lists them")
        try:
            scenarios = gallery.run(family)
        except GalleryBusy:
            outcome = operation_outcome(503, "the gallery is being run for another reader; retry in a few seconds")
            return Response(dumps(outcome), status=503, mimetype="application/json", headers={"Retry-After": "5"})
        return render_template("gallery.html", scenarios=scenarios, families=families, family=family,
                               cards=sum(len(a.cards) for s in scenarios for a in s.answers))

    def analytics_input():
        require_audit_reader()
        try:
            period = analytics.period_from(request.args)
        except analytics.PeriodError as error:
            raise ApiError(400, str(error), [("from/to", str(error))]) from None
        return period, analytics.topic_rows(store.engine, period)

    @pages.get("/analytics/feedback")
    def feedback_analytics():
        period, rows = analytics_input()
        return render_template("analytics.html", period=period, rows=rows, chart=analytics.bar_chart_svg(rows))

    @pages.get("/analytics/feedback.csv")
    def feedback_analytics_csv():
        period, rows = analytics_input()
        name = f"feedback-{period.start.isoformat()}-{period.end.isoformat()}.csv"
        return Response(analytics.as_csv(rows, period), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return pages
