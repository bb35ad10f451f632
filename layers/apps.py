from django.apps import AppConfig


class LayersConfig(AppConfig):
    name = "layers"
    verbose_name = "民情地图数据 Layers"

    def ready(self) -> None:
        # Permission changes (groups, permissions, superuser/staff flags, scopes) are audited.
        from layers.protection import audit

        audit.connect_signals()
