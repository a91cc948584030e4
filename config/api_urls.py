"""The provider API, version 1 (mounted at /api/v1/ by config.urls). Every route takes a payment
provider's token; the OpenAPI schema too (YAML, or JSON with ?format=json)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from schemes.payments import api

urlpatterns = [
    path("payrolls/", api.PayrollList.as_view(), name="api_payrolls"),
    path("payrolls/<int:pk>/", api.PayrollDetail.as_view(), name="api_payroll"),
    path("payrolls/<int:pk>/lines/", api.LineList.as_view(), name="api_payroll_lines"),
    path("payrolls/<int:pk>/reconciliation/", api.ReconciliationBatch.as_view(), name="api_payroll_reconciliation"),
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
]
