from django.apps import AppConfig


class MapserverConfig(AppConfig):
    name = "mapserver"
    verbose_name = "地图服务 Map server"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the start-up checks)
