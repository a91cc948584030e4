"""The provider API: token authentication only, each provider's reach (its points' lines), the lines
as the reconciliation file has them, reconciliation batches once per Idempotency-Key, batch limits,
throttling and the OpenAPI schema."""

import datetime
import json
import threading

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient
from wagtail.models import ModelLogEntry

from schemes.payments import services
from schemes.payments.api_services import idempotency_keys_prune, provider_token_create, provider_token_revoke
from schemes.payments.models import ApiIdempotencyKey, LineStatus, PaymentLine, Payroll, PayrollStatus
from tests.factories import PASSWORD, UserFactory
from workflows.services import approval_decide

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_throttle():
    # Throttle counts live in the cache, keyed by token id: ids come back between tests.
    cache.clear()


@pytest.fixture
def approved(payment_plan, cycle, people, accountant, checkers, payroll_workflow, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        request = services.payroll_submit(payroll=Payroll.objects.get(pk=payroll.pk), by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checkers[0][0])
    return Payroll.objects.get(pk=payroll.pk)


def provider_with_point(code, location, by):
    provider = services.provider_create(fields={"code": code, "name": f"Provider {code}"}, by=by)
    services.point_create(fields={"code": f"{code}-P1", "name": f"{code} point", "provider": provider,
                                  "location": location}, by=by)
    return provider


@pytest.fixture
def providers(geo, accountant):
    """Provider A pays district A, provider B district B."""
    return provider_with_point("PA", geo.district_a, accountant), provider_with_point("PB", geo.district_b, accountant)


def client_of(secret):
    client = APIClient()
    if secret:
        client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


@pytest.fixture
def tokens(providers, accountant):
    """(token, secret) of provider A and of provider B."""
    return [provider_token_create(provider=provider, name="system", by=accountant) for provider in providers]


@pytest.fixture
def api_a(tokens):
    return client_of(tokens[0][1])


@pytest.fixture
def api_b(tokens):
    return client_of(tokens[1][1])


def line_of(people, name, payroll):
    return PaymentLine.objects.get(payroll=payroll, beneficiary_id=people[name].pk)


def routes(payroll_pk):
    return [reverse("api_payrolls"), reverse("api_payroll", args=[payroll_pk]),
            reverse("api_payroll_lines", args=[payroll_pk]), reverse("api_schema")]


def post_batch(client, payroll, rows, key="batch-1"):
    return client.post(reverse("api_payroll_reconciliation", args=[payroll.pk]), {"rows": rows}, format="json",
                       HTTP_IDEMPOTENCY_KEY=key)


# --- authentication ---------------------------------------------------------------------------------


def test_every_route_refuses_requests_without_a_valid_token(approved, tokens, accountant):
    revoked_secret = provider_token_create(provider=tokens[0][0].provider, by=accountant)[1]
    provider_token_revoke(token=tokens[0][0].provider.api_tokens.order_by("-pk").first(), by=accountant)
    reconcile = reverse("api_payroll_reconciliation", args=[approved.pk])

    for secret in (None, "mzp_not-a-token", revoked_secret):
        client = client_of(secret)
        for url in routes(approved.pk):
            response = client.get(url)
            assert response.status_code == 401, (secret, url)
            assert response["WWW-Authenticate"].startswith("Token")
        assert client.post(reconcile, {"rows": []}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 401


def test_a_logged_in_admin_session_is_not_enough(client, approved, tokens):
    superuser = UserFactory(username="boss", is_superuser=True, is_staff=True)
    client.login(username=superuser.username, password=PASSWORD)

    for url in routes(approved.pk):
        assert client.get(url).status_code == 401, url
    response = client.post(reverse("api_payroll_reconciliation", args=[approved.pk]),
                           data=json.dumps({"rows": [{"code": "PL1", "paid": "no"}]}),
                           content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 401


def test_a_deactivated_service_user_stops_its_tokens(approved, tokens, api_a):
    user = tokens[0][0].user
    user.is_active = False
    user.save()

    assert api_a.get(reverse("api_payrolls")).status_code == 401


def test_a_token_records_when_it_was_last_used(approved, tokens, api_a):
    assert tokens[0][0].last_used_at is None

    api_a.get(reverse("api_payrolls"))

    tokens[0][0].refresh_from_db()
    assert tokens[0][0].last_used_at is not None


def test_wagtail_admin_api_keeps_its_session_authentication(client, superuser):
    client.login(username=superuser.username, password=PASSWORD)

    assert client.get("/admin/api/main/pages/").status_code == 200


# --- reading ----------------------------------------------------------------------------------------


def test_a_provider_lists_the_approved_payrolls_it_has_lines_in(approved, payment_plan, cycles, accountant, api_a,
                                                                tokens, geo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        pending = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycles[1], by=accountant)
    assert Payroll.objects.get(pk=pending.pk).status == PayrollStatus.GENERATED
    pointless = provider_with_point("PZ", geo.other_region, accountant)
    api_z = client_of(provider_token_create(provider=pointless, by=accountant)[1])

    listed = api_a.get(reverse("api_payrolls")).json()

    assert [payroll["id"] for payroll in listed["results"]] == [approved.pk]
    assert listed["results"][0] | {"approved_at": None} == {
        "id": approved.pk, "name": approved.name, "status": "APPROVED", "payment_plan": "CG-PAY",
        "cycle": "CG-2025-01", "currency": "TZS", "approved_at": None}
    assert api_z.get(reverse("api_payrolls")).json()["results"] == []
    assert api_z.get(reverse("api_payroll_lines", args=[approved.pk])).status_code == 404
    assert api_a.get(reverse("api_payroll", args=[pending.pk])).status_code == 404


def test_the_payroll_counts_only_the_providers_payable_lines(approved, api_a, api_b):
    mine = api_a.get(reverse("api_payroll", args=[approved.pk])).json()
    theirs = api_b.get(reverse("api_payroll", args=[approved.pk])).json()

    # District A: 800 + 900 (the 1100 line above the limit is not released); district B: 600.
    assert (mine["lines"], mine["total"], mine["lines_by_status"]) == (2, "1700.00", {"DUE": 2})
    assert (theirs["lines"], theirs["total"]) == (1, "600.00")


def test_lines_have_the_reconciliation_files_columns_and_only_the_providers(approved, people, api_a, api_b):
    lines = api_a.get(reverse("api_payroll_lines", args=[approved.pk])).json()["results"]
    three = line_of(people, "three", approved)

    assert sorted(line["code"] for line in lines) == sorted(
        line_of(people, name, approved).code for name in ("three", "six"))
    assert next(line for line in lines if line["code"] == three.code) == {
        "code": three.code, "first_name": three.recipient.first_name, "last_name": three.recipient.last_name,
        "date_of_birth": three.recipient.dob.isoformat(), "status": "DUE", "amount": "800.00", "type": "Cash",
        "receipt": "", "paid_on": None}
    assert [line["code"] for line in api_b.get(reverse("api_payroll_lines", args=[approved.pk])).json()["results"]] \
        == [line_of(people, "single_b", approved).code]


def test_lines_page_with_a_cursor_and_filter_by_point_and_status(approved, api_a, providers):
    url = reverse("api_payroll_lines", args=[approved.pk])

    first = api_a.get(url, {"page_size": 1}).json()
    second = api_a.get(first["next"]).json()

    assert len(first["results"]) == len(second["results"]) == 1
    assert {first["results"][0]["code"], second["results"][0]["code"]} == {
        line["code"] for line in api_a.get(url).json()["results"]}
    assert second["next"] is None
    assert len(api_a.get(url, {"point": "PA-P1"}).json()["results"]) == 2
    assert api_a.get(url, {"point": "PB-P1"}).status_code == 404  # another provider's point
    assert api_a.get(url, {"status": "PAID"}).json()["results"] == []
    assert api_a.get(url, {"status": "NONSENSE"}).status_code == 400


# --- reconciliation batches ---------------------------------------------------------------------------


def test_a_batch_applies_and_is_audited_with_the_token(approved, people, api_a, tokens):
    three, six = line_of(people, "three", approved), line_of(people, "six", approved)
    today = timezone.localdate().isoformat()

    response = post_batch(api_a, approved, [
        {"code": three.code, "paid": True, "receipt": "R-1", "paid_on": today, "amount": "800.00"},
        {"code": six.code, "paid": "no"}])

    assert response.status_code == 200, response.json()
    assert response.json() == {"payroll": approved.pk, "rows": 2, "paid": 1, "unpaid": 1, "unchanged": 0,
                               "errors": []}
    three.refresh_from_db()
    assert (three.status, three.receipt, three.paid_on.isoformat()) == (LineStatus.PAID, "R-1", today)
    assert PaymentLine.objects.get(pk=six.pk).status == LineStatus.UNPAID
    entry = ModelLogEntry.objects.get(action="mizani.reconcile_api", object_id=str(approved.pk))
    assert entry.user_id == tokens[0][0].user_id
    assert entry.data | {"idempotency_key": None} == {
        "token": tokens[0][0].prefix, "provider": "PA", "idempotency_key": None, "rows": 2, "paid": 1,
        "unpaid": 1, "unchanged": 0, "errors": 0}


def test_a_row_paying_another_amount_than_the_lines_is_refused(approved, people, api_a):
    three = line_of(people, "three", approved)

    response = post_batch(api_a, approved, [{"code": three.code, "paid": True, "receipt": "R-1", "amount": "80"}])

    assert response.status_code == 422
    assert response.json()["errors"] == [{"row": 1, "code": "amount_not_matching",
                                          "message": "amount: This row says 80.00; the line's amount is 800.00 TZS."}]
    assert PaymentLine.objects.get(pk=three.pk).status == LineStatus.DUE


def test_the_same_key_and_body_replays_the_first_answer(approved, people, api_a):
    three = line_of(people, "three", approved)
    rows = [{"code": three.code, "paid": "yes", "receipt": "R-1"}]
    first = post_batch(api_a, approved, rows)
    audits = ModelLogEntry.objects.filter(action__startswith="mizani.reconcile").count()

    again = post_batch(api_a, approved, [{"receipt": "R-1", "paid": "yes", "code": three.code}])  # keys reordered

    assert again.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert ModelLogEntry.objects.filter(action__startswith="mizani.reconcile").count() == audits
    assert ApiIdempotencyKey.objects.count() == 1
    # With a new key the batch is checked again: the line is paid with that receipt already.
    assert post_batch(api_a, approved, rows, key="batch-2").json()["unchanged"] == 1


def test_keys_older_than_the_replay_period_are_pruned_and_the_batch_stays_applied(approved, people, api_a,
                                                                                  settings):
    settings.MIZANI_API_IDEMPOTENCY_DAYS = 30
    line = PaymentLine.objects.get(payroll=approved, beneficiary_id=people["three"].pk)
    rows = [{"code": line.code, "paid": True, "receipt": "R-OLD", "paid_on": timezone.localdate().isoformat()}]
    assert post_batch(api_a, approved, rows, key="old").status_code == 200
    assert post_batch(api_a, approved, rows, key="recent").status_code == 200
    ApiIdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - datetime.timedelta(days=31))

    assert idempotency_keys_prune() == 1
    assert list(ApiIdempotencyKey.objects.values_list("key", flat=True)) == ["recent"]
    assert PaymentLine.objects.get(pk=line.pk).status == LineStatus.PAID
    again = post_batch(api_a, approved, rows, key="old")  # a new request now: changes nothing
    assert again.status_code == 200 and again.json()["unchanged"] == 1


@pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
                    reason="concurrent transactions: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_requests_with_one_key_at_once_apply_once(approved, people, tokens):
    rows = [{"code": line_of(people, name, approved).code, "paid": "yes", "receipt": f"R-{name}"}
            for name in ("three", "six")]
    start = threading.Barrier(2)
    answers = []

    def post():
        try:
            start.wait()
            response = post_batch(client_of(tokens[0][1]), approved, rows, key="same")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    for _round in range(5):
        ApiIdempotencyKey.objects.all().delete()
        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    first = answers[0][1]
    assert (first["paid"], first["unchanged"]) == (2, 0)
    # Each round: both requests get one answer, from one application (the first round paid the lines,
    # later rounds find them paid: unchanged).
    for number in range(0, len(answers), 2):
        assert answers[number] == answers[number + 1]
    assert ModelLogEntry.objects.filter(action="mizani.reconcile_api").count() == 5
    assert ModelLogEntry.objects.filter(action="mizani.reconcile", data__paid=2).count() == 1


def test_the_same_key_with_other_rows_is_refused(approved, people, api_a):
    three, six = line_of(people, "three", approved), line_of(people, "six", approved)
    post_batch(api_a, approved, [{"code": three.code, "paid": "no"}])

    response = post_batch(api_a, approved, [{"code": six.code, "paid": "no"}])

    assert response.status_code == 422
    assert "Idempotency-Key was used for another request" in response.json()["detail"]
    assert PaymentLine.objects.get(pk=six.pk).status == LineStatus.DUE


def test_keys_belong_to_the_provider_not_the_token(approved, people, api_a, tokens, accountant):
    three = line_of(people, "three", approved)
    rows = [{"code": three.code, "paid": "no"}]
    first = post_batch(api_a, approved, rows)
    rotated = client_of(provider_token_create(provider=tokens[0][0].provider, by=accountant)[1])

    again = post_batch(rotated, approved, rows)

    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"


def test_another_providers_lines_are_not_found_and_nothing_is_applied(approved, people, api_a, api_b):
    three, single_b = line_of(people, "three", approved), line_of(people, "single_b", approved)

    response = post_batch(api_a, approved, [{"code": three.code, "paid": "no"},
                                            {"code": single_b.code, "paid": "no"},
                                            {"code": "PL999999999", "paid": "no"}])

    assert response.status_code == 422
    # B's line and a code of no line answer alike: nothing tells that B's line exists.
    assert [(error["row"], error["code"], error["message"]) for error in response.json()["errors"]] == [
        (row, "benefit_consumption_not_found", "code: None of your payment points' lines has this code.")
        for row in (2, 3)]
    assert response.json()["paid"] == response.json()["unpaid"] == 0
    assert set(PaymentLine.objects.filter(pk__in=[three.pk, single_b.pk]).values_list("status", flat=True)) == {"DUE"}
    # B's own token reaches its line.
    assert post_batch(api_b, approved, [{"code": single_b.code, "paid": "no"}]).json()["unpaid"] == 1


def test_a_batch_with_row_errors_is_answered_again_the_same(approved, people, api_a):
    rows = [{"code": line_of(people, "three", approved).code, "paid": "maybe"}]
    first = post_batch(api_a, approved, rows)

    assert first.status_code == 422
    assert first.json()["errors"][0]["code"] == "paid_column_invalid_value"
    assert post_batch(api_a, approved, rows).json() == first.json()


def test_a_batch_takes_an_idempotency_key(approved, people, api_a):
    url = reverse("api_payroll_reconciliation", args=[approved.pk])
    rows = {"rows": [{"code": line_of(people, "three", approved).code, "paid": "no"}]}

    assert api_a.post(url, rows, format="json").status_code == 400
    assert api_a.post(url, rows, format="json", HTTP_IDEMPOTENCY_KEY="x" * 256).status_code == 400
    assert api_a.post(url, rows, format="json", HTTP_IDEMPOTENCY_KEY="with space").status_code == 400
    assert ApiIdempotencyKey.objects.count() == 0


@pytest.mark.parametrize("body", [{}, {"rows": []}, {"rows": "PL1"}, {"rows": [{"paid": "no"}]},
                                  {"rows": [{"code": "PL1", "paid": 3}]}])
def test_malformed_batches_are_refused(approved, api_a, body):
    response = api_a.post(reverse("api_payroll_reconciliation", args=[approved.pk]), body, format="json",
                          HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 400
    assert ApiIdempotencyKey.objects.count() == 0


@override_settings(MIZANI_API_BATCH_MAX_ROWS=2)
def test_a_batch_has_at_most_the_configured_rows(approved, people, api_a):
    rows = [{"code": line_of(people, name, approved).code, "paid": "no"} for name in ("three", "six")]

    assert post_batch(api_a, approved, rows).status_code == 200
    too_many = post_batch(api_a, approved, [*rows, {"code": "PL1", "paid": "no"}], key="batch-2")
    assert too_many.status_code == 400
    assert "At most 2 rows per batch" in json.dumps(too_many.json())


def test_a_payroll_that_is_no_longer_approved_is_refused(approved, people, api_a):
    Payroll.objects.filter(pk=approved.pk).update(status=PayrollStatus.RECONCILED)

    response = post_batch(api_a, approved, [{"code": line_of(people, "three", approved).code, "paid": "no"}])

    assert response.status_code == 409
    assert "only an approved payroll is reconciled" in response.json()["detail"]
    assert ApiIdempotencyKey.objects.count() == 0  # refused whole: the same key may be sent again


# --- throttling and schema ------------------------------------------------------------------------------


def test_requests_are_throttled_per_token(approved, api_a, api_b):
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == ["schemes.payments.api_auth.ProviderTokenThrottle"]
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["provider_token"] == settings.MIZANI_API_THROTTLE_RATE
    rates = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"provider_token": "2/min"}}
    with override_settings(REST_FRAMEWORK=rates):
        statuses = [api_a.get(reverse("api_payrolls")).status_code for _ in range(3)]
        other = api_b.get(reverse("api_payrolls")).status_code

    assert statuses == [200, 200, 429]
    assert other == 200


def test_the_schema_is_valid_openapi_3_listing_the_routes(api_a):
    response = api_a.get(reverse("api_schema"), {"format": "json"})

    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["providerToken"]["scheme"] == "bearer"
    assert set(schema["paths"]) == {"/api/v1/payrolls/", "/api/v1/payrolls/{id}/", "/api/v1/payrolls/{id}/lines/",
                                    "/api/v1/payrolls/{id}/reconciliation/"}
    post = schema["paths"]["/api/v1/payrolls/{id}/reconciliation/"]["post"]
    assert {"name": "Idempotency-Key", "in": "header", "required": True} | {"schema": None, "description": None} \
        == next(p for p in post["parameters"] if p["name"] == "Idempotency-Key") | {"schema": None, "description": None}
    assert set(post["responses"]) >= {"200", "400", "404", "409", "422"}
