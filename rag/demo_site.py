"""A small bilingual website for the fictitious Clínica Sonrisas, served by TalIA under /demo-site/.

The knowledge base crawls it on first start, so the demo assistant has real pages to answer from and
retrieval quality can be measured against known questions (`rag/tests/questions.py`).
"""

from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import escape

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe


@dataclass(frozen=True)
class DemoPage:
    """A page's template, its language and the path of the same page in the other language."""

    template: str
    lang: Literal["es", "en"]
    translation: str


# Path under /demo-site/ -> page. Only these paths exist: a template name never comes from the URL.
PAGES: dict[str, DemoPage] = {
    "": DemoPage("rag/demo_site/es_inicio.html", "es", "en/"),
    "servicios/": DemoPage("rag/demo_site/es_servicios.html", "es", "en/services/"),
    "implantes/": DemoPage("rag/demo_site/es_implantes.html", "es", "en/implants/"),
    "ortodoncia/": DemoPage("rag/demo_site/es_ortodoncia.html", "es", "en/orthodontics/"),
    "precios/": DemoPage("rag/demo_site/es_precios.html", "es", "en/prices/"),
    "horario-y-ubicacion/": DemoPage("rag/demo_site/es_horario_y_ubicacion.html", "es", "en/opening-hours/"),
    "preguntas-frecuentes/": DemoPage("rag/demo_site/es_preguntas_frecuentes.html", "es", "en/faq/"),
    "contacto/": DemoPage("rag/demo_site/es_contacto.html", "es", "en/contact/"),
    "en/": DemoPage("rag/demo_site/en_home.html", "en", ""),
    "en/services/": DemoPage("rag/demo_site/en_services.html", "en", "servicios/"),
    "en/implants/": DemoPage("rag/demo_site/en_implants.html", "en", "implantes/"),
    "en/orthodontics/": DemoPage("rag/demo_site/en_orthodontics.html", "en", "ortodoncia/"),
    "en/prices/": DemoPage("rag/demo_site/en_prices.html", "en", "precios/"),
    "en/opening-hours/": DemoPage("rag/demo_site/en_opening_hours.html", "en", "horario-y-ubicacion/"),
    "en/faq/": DemoPage("rag/demo_site/en_faq.html", "en", "preguntas-frecuentes/"),
    "en/contact/": DemoPage("rag/demo_site/en_contact.html", "en", "contacto/"),
}


def page_url(path: str) -> str:
    """The URL of the page at `path` in `PAGES`, e.g. "/demo-site/precios/"."""
    if not path:
        return reverse("demo-site")
    return reverse("demo-site-page", kwargs={"path": path})


@login_not_required
@require_safe
def page(request: HttpRequest, path: str = "") -> HttpResponse:
    demo_page = PAGES.get(path)
    if demo_page is None:
        raise Http404("No such page on the demo site")
    context = {"lang": demo_page.lang, "path": path, "translation": demo_page.translation}
    return render(request, demo_page.template, context)


@login_not_required
@require_safe
def sitemap(request: HttpRequest) -> HttpResponse:
    """Every page, with absolute URLs, so that the crawler finds them all without following links."""
    entries = "".join(
        f"  <url><loc>{escape(request.build_absolute_uri(page_url(path)))}</loc></url>\n" for path in PAGES
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{entries}"
        "</urlset>\n"
    )
    return HttpResponse(body, content_type="application/xml")
