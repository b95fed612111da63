from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from delivery.api.views import ParcelMachineViewSet
from legal.api.views import TermsView
from shop.api.errors import problem_response
from shop.api.views import ProductViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("products", ProductViewSet, basename="product")
router.register("parcel-machines", ParcelMachineViewSet, basename="parcel-machine")

api_urlpatterns = [
    path("", include(router.urls)),
    path("terms/", TermsView.as_view(), name="terms"),
    path("", include("orders.api.urls")),
    path("", include("delivery.api.urls")),
    path("", include("returns.api.urls")),
    path("", include("legal.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start script as a file: no inline script (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
]


def api_not_found(request, *args, **kwargs):
    return problem_response(404, detail="No such resource.")


urlpatterns = [
    path("", RedirectView.as_view(url="/api/docs/", permanent=False)),
    path("api/", include(api_urlpatterns)),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("orders/", include("returns.withdrawals.web_urls")),
    path("orders/", include("orders.urls")),
    path("privacy/", include("legal.urls")),
    # Keep this last: every unknown /api/ path answers problem+json, DEBUG or not.
    re_path(r"^api/", api_not_found),
]

if settings.BENCH_BASELINE:  # `make bench` only: the bare baseline endpoints (bench/)
    urlpatterns.insert(0, path("bench/", include("shop.bench_views")))


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def handler404(request, exception=None):
    if _is_api(request):
        return problem_response(404, detail="No such resource.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler403(request, exception=None):
    if _is_api(request):
        return problem_response(403, detail="You do not have permission to do this.")
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)


def handler500(request):
    if _is_api(request):
        return problem_response(500, detail="An unexpected error; it has been logged.")
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request, exception=None):
    if _is_api(request):
        return problem_response(400, detail="Bad request.")
    from django.views.defaults import bad_request

    return bad_request(request, exception)
