"""The provider API (/api/v1/): a payment provider's system lists the payrolls it may pay, reads their
lines under its payment points (the columns of the reconciliation CSV), and posts what it paid in
batches, each once per `Idempotency-Key`. Thin: reads go through the selectors as the token's service
user (scoped to the provider's points, see api_auth), the batch through the reconciliation engine."""

import re

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Exists, OuterRef, Sum
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, generics, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors
from .api_auth import HasProviderToken
from .api_services import IdempotencyKeyReused, reconciliation_batch_post
from .models import PAYABLE_STATUSES, LineStatus, PaymentPoint, PayrollStatus
from .views import PAYMENT_TYPE

API_PREFIX = "/api/v1/"
# Printable ASCII without spaces, as the IETF Idempotency-Key draft and Stripe use (UUIDs fit).
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def only_provider_api(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: the schema describes this API, not Wagtail's admin API."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith(API_PREFIX)]


class ProviderAPIView(APIView):
    permission_classes = [HasProviderToken]

    @property
    def provider(self):
        return self.request.auth.provider


def provider_payrolls(user):
    """Payrolls approved for payment (or already reconciled) with lines the user may see: for a
    token's service user, lines under its provider's points."""
    lines = selectors.lines_for(user).filter(payroll=OuterRef("pk"))
    return selectors.payrolls_for(user).filter(status__in=PAYABLE_STATUSES).filter(Exists(lines))


def payable_lines(user, payroll):
    """The payroll's lines the user may see, less those above the transaction limit not yet released
    (the export leaves them out too: they are not to be paid yet)."""
    lines = selectors.lines_of_payroll_for(user, payroll)
    if payroll.withholds_over_limit:
        lines = lines.filter(flagged_over_limit=False)
    return lines


# --- serializers -------------------------------------------------------------------------------------


class PayrollSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=PayrollStatus.choices)
    payment_plan = serializers.CharField(source="payment_plan.code")
    cycle = serializers.CharField(source="cycle.code")
    currency = serializers.CharField()
    approved_at = serializers.DateTimeField(source="decided_at")


class PayrollDetailSerializer(PayrollSerializer):
    lines = serializers.IntegerField(source="provider_lines", help_text="Lines to pay under your payment points.")
    total = serializers.DecimalField(max_digits=18, decimal_places=2, source="provider_total",
                                     help_text="Their total amount.")
    lines_by_status = serializers.DictField(child=serializers.IntegerField(), source="provider_lines_by_status")


LINE_COLUMNS = ("pk", "beneficiary_id", "status", "amount", "receipt", "paid_on", "recipient__first_name",
                "recipient__last_name", "recipient__dob")


class LineSerializer(serializers.Serializer):
    """A payment line as the reconciliation CSV gives it (the payroll's name and status are on the
    payroll)."""

    code = serializers.CharField()
    first_name = serializers.CharField(source="recipient.first_name", default="")
    last_name = serializers.CharField(source="recipient.last_name", default="")
    date_of_birth = serializers.DateField(source="recipient.dob", default=None)
    status = serializers.ChoiceField(choices=LineStatus.choices)
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    type = serializers.SerializerMethodField()
    receipt = serializers.CharField()
    paid_on = serializers.DateField()

    def get_type(self, line) -> str:
        return PAYMENT_TYPE


@extend_schema_field({"oneOf": [{"type": "boolean"}, {"type": "string"}]})
class PaidField(serializers.Field):
    """Paid as the file has it: true/false, or text such as "yes" / "no" (the engine judges it)."""

    def to_internal_value(self, data):
        if not isinstance(data, (bool, str)):
            raise serializers.ValidationError("Give true, false or text.")
        return data

    def to_representation(self, value):
        return value


class ReconciliationRowSerializer(serializers.Serializer):
    code = serializers.CharField(allow_blank=True, max_length=64, help_text="The line's code, e.g. PL000000042.")
    paid = PaidField(help_text="Whether the line was paid (true/false, or yes/no).")
    receipt = serializers.CharField(allow_blank=True, required=False, default="", max_length=100)
    paid_on = serializers.CharField(allow_blank=True, required=False, default="", max_length=32,
                                    help_text="The date paid, YYYY-MM-DD (required when paid).")
    amount = serializers.CharField(allow_blank=True, required=False, max_length=32,
                                   help_text="The amount paid, e.g. \"800.00\" (optional): when given, it must be "
                                             "the line's amount.")


class ReconciliationBatchSerializer(serializers.Serializer):
    rows = ReconciliationRowSerializer(many=True, allow_empty=False)

    def validate_rows(self, rows):
        limit = settings.MIZANI_API_BATCH_MAX_ROWS
        if len(rows) > limit:
            raise serializers.ValidationError(f"At most {limit} rows per batch: send the rest in further batches.")
        return rows


ReconciliationResultSerializer = inline_serializer("ReconciliationResult", {
    "payroll": serializers.IntegerField(),
    "rows": serializers.IntegerField(),
    "paid": serializers.IntegerField(),
    "unpaid": serializers.IntegerField(),
    "unchanged": serializers.IntegerField(),
    "errors": inline_serializer("ReconciliationRowError", {
        "row": serializers.IntegerField(help_text="1 for the batch's first row."),
        "code": serializers.CharField(help_text="benefit_consumption_not_found, benefit_consumption_not_in_payroll, "
                                                "paid_column_invalid_value, receipt_required, status_not_matching, "
                                                "amount_not_matching, amount_invalid, paid_date_invalid"),
        "message": serializers.CharField()}, many=True),
})
ErrorSerializer = inline_serializer("Error", {"detail": serializers.CharField()})


# --- views ---------------------------------------------------------------------------------------------


class PayrollList(ProviderAPIView, generics.ListAPIView):
    """Payrolls approved for payment with lines under your payment points."""

    serializer_class = PayrollSerializer

    def get_queryset(self):
        return provider_payrolls(self.request.user).filter(status=PayrollStatus.APPROVED).order_by("-decided_at", "-pk")


class PayrollDetail(ProviderAPIView, generics.RetrieveAPIView):
    """One payroll: how many lines you have to pay, their total, and their statuses."""

    serializer_class = PayrollDetailSerializer

    def get_queryset(self):
        return provider_payrolls(self.request.user)

    def get_object(self):
        payroll = super().get_object()
        lines = payable_lines(self.request.user, payroll)
        totals = lines.aggregate(count=Count("pk"), total=Sum("amount"))
        payroll.provider_lines, payroll.provider_total = totals["count"], totals["total"] or 0
        payroll.provider_lines_by_status = dict(lines.order_by().values_list("status").annotate(n=Count("pk")))
        return payroll


class LinePagination(CursorPagination):
    """With a cursor, in the order of the (payroll, beneficiary) index: each page is an index range
    read, so deep pages of a million-line payroll cost what the first does."""

    ordering = "beneficiary_id"
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000


@extend_schema(parameters=[
    OpenApiParameter("point", OpenApiTypes.STR, description="Only the lines of this payment point (its code)."),
    OpenApiParameter("status", OpenApiTypes.STR, enum=LineStatus.values, description="Only lines in this status."),
])
class LineList(ProviderAPIView, generics.ListAPIView):
    """The payroll's lines under your payment points, with the reconciliation file's columns. Lines
    above the transaction limit are left out until released for payment."""

    serializer_class = LineSerializer
    pagination_class = LinePagination

    def get_queryset(self):
        user = self.request.user
        payroll = get_object_or_404(provider_payrolls(user), pk=self.kwargs["pk"])
        lines = payable_lines(user, payroll).select_related(None).select_related("recipient").only(
            *LINE_COLUMNS)
        if self.request.query_params.get("point"):
            point = get_object_or_404(PaymentPoint.objects.filter(provider=self.provider),
                                      code=self.request.query_params["point"])
            lines = lines.filter(location__path__startswith=point.location.path)
        if self.request.query_params.get("status"):
            if self.request.query_params["status"] not in LineStatus.values:
                raise exceptions.ValidationError({"status": [f"One of {', '.join(LineStatus.values)}."]})
            lines = lines.filter(status=self.request.query_params["status"])
        return lines


class ReconciliationBatch(ProviderAPIView):
    """Post what you paid: the rows are applied all together or not at all. Send an `Idempotency-Key`
    (e.g. a UUID) per batch: the same key with the same rows returns the first answer again without
    applying anything twice; the same key with other rows is refused (422)."""

    @extend_schema(
        request=ReconciliationBatchSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
                                     description="One per batch, e.g. a UUID; at most 255 printable characters.")],
        responses={
            200: OpenApiResponse(ReconciliationResultSerializer, description="Applied (or replayed)."),
            422: OpenApiResponse(ReconciliationResultSerializer,
                                 description="Rows with errors: nothing applied. Or the key was used for other rows."),
            400: OpenApiResponse(ErrorSerializer, description="Malformed body, too many rows, no Idempotency-Key."),
            404: OpenApiResponse(ErrorSerializer, description="No such payroll with lines under your points."),
            409: OpenApiResponse(ErrorSerializer, description="The payroll cannot be reconciled (not approved)."),
        })
    def post(self, request, pk):
        key = request.headers.get("Idempotency-Key", "")
        if not IDEMPOTENCY_KEY.fullmatch(key):
            raise exceptions.ValidationError({"detail": "Send an Idempotency-Key header (e.g. a UUID, at most 255 "
                                                        "printable characters), one per batch."})
        payroll = get_object_or_404(provider_payrolls(request.user), pk=pk)
        batch = ReconciliationBatchSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        try:
            result_status, body, replayed = reconciliation_batch_post(
                token=request.auth, payroll=payroll, rows=batch.validated_data["rows"], idempotency_key=key,
                by=request.user)
        except IdempotencyKeyReused:
            return Response({"detail": "This Idempotency-Key was used for another request: nothing applied. "
                                       "Use a new key for a new batch."},
                            status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        except PermissionDenied as error:
            raise exceptions.PermissionDenied(str(error)) from None
        except ValidationError as error:
            return Response({"detail": " ".join(error.messages)}, status=status.HTTP_409_CONFLICT)
        response = Response(body, status=result_status)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response
