"""Oscar's URLs, as its "Building your own shop" recipe mounts them (unused by the bench)."""

from django.apps import apps
from django.urls import include, path

urlpatterns = [path("", include(apps.get_app_config("oscar").urls[0]))]
