from django.apps import AppConfig


class BasemapsConfig(AppConfig):
    name = "basemaps"
    verbose_name = "底图 Basemaps"

    def ready(self) -> None:
        from django.core import checks

        from .sources import basemaps_check

        checks.register(basemaps_check, "basemaps")
