"""The URL map by area: one module per area, each with its ``app_name`` (the namespace of its
URL names) and its ``urlpatterns``; ``mapserver/urls.py`` includes them in a stated order.

Every module spells its paths in full (``api/grid/session``, not a prefix and a tail), so a path
seen in a log or a browser can be found here with grep.
"""
