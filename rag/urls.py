from django.urls import path

from rag import demo_site

urlpatterns = [
    path("demo-site/", demo_site.page, name="demo-site"),
    path("demo-site/sitemap.xml", demo_site.sitemap, name="demo-site-sitemap"),
    path("demo-site/<path:path>", demo_site.page, name="demo-site-page"),
]
