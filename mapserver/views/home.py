"""Thin views: parse → select or act → serialise → respond."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers import selectors
from layers.protection.scope import scope_describe
from layers.services import users

#: The front door's entry points (path, who, what), from DESIGN.md §5. Only those the URL map
#: serves are listed, so the page never links to something that is not there yet.
ENTRY_POINTS = (
    (
        "/report/",
        "居民 Residents",
        "小兰帮办：反映问题、跟进办理、评价 (report a problem, follow it, rate it; no account)",
    ),
    ("/public/", "公众 Public", "民情公开：各网格办理情况、街道响应时长、已办结案例 (what the city solves)"),
    ("/wall/", "指挥中心 Command center", "大屏：全市态势、事件、热力图 (map wall)"),
    ("/grid/", "网格员 Grid worker", "我的网格、房屋、人口、事件 (my grid)"),
    ("/analyst/", "分析员 Analyst", "图层目录、筛选、导出 (layers, filters, exports)"),
    ("/moderation/", "指挥中心 Command center", "公开摘要审核 (public summaries: write and approve)"),
    ("/imports/", "数据管理 Data steward", "导入区划、边界、网格、地址、人口、单位：试运行、拒绝报告、提交 (imports)"),
    ("/admin/", "数据管理 Data steward", "区划、网格、地址、房屋、人口、单位，带地图 (admin with maps)"),
    ("/api/whoami", "JSON API", "当前用户；会话登录或 Authorization: Token <key> (who am I)"),
    ("/api/schema/", "OpenAPI", "API 说明 (API schema)"),
    ("/open311/v2/discovery.json", "Open311 GeoReport v2", "诉求接入 (intake)"),
    ("/ogc/", "OGC API Features", "QGIS 等客户端 (for QGIS)"),
)


def _served(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def home(request: HttpRequest) -> HttpResponse:
    """The front door: what the platform holds, where each user goes and, in development,
    the demo logins."""
    context = {
        "counts": selectors.registry_counts(),
        "entry_points": [entry for entry in ENTRY_POINTS if _served(entry[0])],
        "demo_logins": users.demo_users_list() if settings.DEBUG else [],
    }
    return render(request, "mapserver/home.html", context)


_CODES = serializers.ListField(child=serializers.CharField())


class WhoAmI(APIView):
    """The caller as the API sees them: proves session and token auth work, and tells a client
    which part of the city the caller may read."""

    @extend_schema(
        operation_id="whoami",
        summary="The authenticated caller, their roles and their data scope",
        responses=inline_serializer(
            "WhoAmI",
            {
                "username": serializers.CharField(),
                "roles": serializers.ListField(child=serializers.CharField()),
                "scope": inline_serializer(
                    "WhoAmIScope",
                    {
                        "level": serializers.ChoiceField(
                            choices=["city", "district", "street", "community", "grids", "none"]
                        ),
                        "key": serializers.CharField(help_text="changes whenever the scope does"),
                        "districts": _CODES,
                        "streets": _CODES,
                        "communities": _CODES,
                        "grids": _CODES,
                    },
                ),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        reader = request.reader
        return Response(
            {
                "username": request.user.get_username(),
                "roles": list(reader.roles),
                "scope": scope_describe(reader.scope),
            }
        )
