"""``POST /api/persons/<id>/reveal`` and ``POST /api/events/<id>/reveal``: one personal value in
clear, for a holder of ``layers.reveal_personal_data`` who names a purpose; audited. Body:
``{"field": "id_number" | "phone", "purpose": "…"}`` (events: ``reporter_phone`` |
``reporter_name``). The answer is never cached (``Cache-Control: no-store``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from layers.services.personal_data import personal_data_reveal, revealable_fields

from .. import params
from ..parsers import BodyLeftToTheView
from ..schema import error_response

_ERROR = error_response("400 names the field; 403 without the permission; 404 no such record in your scope")
_REVEALED = inline_serializer(
    name="Revealed",
    fields={
        "subject": serializers.CharField(),
        "id": serializers.IntegerField(),
        "field": serializers.CharField(),
        "value": serializers.CharField(help_text="the clear value"),
        "masked": serializers.CharField(help_text="the masked form shown everywhere else"),
    },
)


def _request_body(subject: str, name: str):
    return inline_serializer(
        name=name,
        fields={
            "field": serializers.ChoiceField(choices=revealable_fields(subject)),
            "purpose": serializers.RegexField(
                params.PURPOSE_PATTERN, max_length=params.PURPOSE_MAX, help_text="why (one line); audited"
            ),
        },
    )


class _Reveal(APIView):
    parser_classes = [BodyLeftToTheView]
    # A clear value beside the purpose the caller typed: never compressed (BREACH).
    never_compress = True
    subject = ""

    def _reveal(self, request: Request, object_id: int) -> Response:
        body = params.parse_json_object(request.body)
        field = params.parse_choice(body, "field", revealable_fields(self.subject))
        purpose = params.parse_purpose(body)
        revealed = personal_data_reveal(
            reader=request.reader,
            user=request.user,
            subject=self.subject,
            object_id=object_id,
            field=field,
            purpose=purpose,
        )
        response = Response(
            {
                "subject": revealed.subject,
                "id": revealed.id,
                "field": revealed.field,
                "value": revealed.value,
                "masked": revealed.masked,
            }
        )
        response["Cache-Control"] = "no-store"
        return response


class PersonReveal(_Reveal):
    subject = "person"

    @extend_schema(
        operation_id="persons_reveal",
        summary="Reveal a resident's ID number or phone (permission layers.reveal_personal_data; audited)",
        request=_request_body("person", "PersonRevealIn"),
        responses={200: _REVEALED, 400: _ERROR, 403: _ERROR, 404: _ERROR},
    )
    def post(self, request: Request, person_id: int) -> Response:
        return self._reveal(request, person_id)


class EventReveal(_Reveal):
    subject = "event"

    @extend_schema(
        operation_id="events_reveal",
        summary="Reveal an event reporter's phone or name (permission layers.reveal_personal_data; audited)",
        request=_request_body("event", "EventRevealIn"),
        responses={200: _REVEALED, 400: _ERROR, 403: _ERROR, 404: _ERROR},
    )
    def post(self, request: Request, event_id: int) -> Response:
        return self._reveal(request, event_id)
