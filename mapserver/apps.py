from django.apps import AppConfig


class MapserverConfig(AppConfig):
    name = "mapserver"
    verbose_name = "地图服务 Map server"
