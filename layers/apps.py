from django.apps import AppConfig


class LayersConfig(AppConfig):
    name = "layers"
    verbose_name = "民情地图数据 Layers"
