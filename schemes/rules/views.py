import logging

from django.db import DatabaseError, transaction
from django.http import JsonResponse
from django.views.decorators.http import require_POST

from .catalogue import BOOLEAN, DATE, NUMBER, TEXT
from .compiler import compile_rule, filter_queryset
from .errors import RuleError, character_offset
from .nodes import to_json
from .parser import parse
from .subjects import resolve_subject
from .text import to_text

logger = logging.getLogger(__name__)
EXPECTED_TYPES = {BOOLEAN, NUMBER, TEXT, DATE}


@require_POST
def rule_check(request):
    """Check a rule for the rule field: POST `text`, `subject` (a subject of rules.subjects) and optionally
    `expect` (boolean by default). Answers {"ok": true, "text": canonical text, "ast": AST JSON,
    "count": records matching among those the user may see (null unless the rule is yes/no)} or
    {"ok": false, "error": message, "position": 0-based index into `text` or null}.

    Registered under the Wagtail admin, which refuses anyone without `wagtailadmin.access_admin`;
    the CSRF middleware refuses a POST without the token."""
    subject, argument = resolve_subject(request.POST.get("subject", ""))
    expect = request.POST.get("expect", BOOLEAN)
    if subject is None or expect not in EXPECTED_TYPES:
        return JsonResponse({"ok": False, "error": "Unknown subject or type.", "position": None}, status=400)
    text = request.POST.get("text", "")
    try:
        node = parse(text)  # the parser's size limits, before the catalogue reads the database
        catalogue = subject.catalogue(argument).for_user(request.user)
        node = compile_rule(node, catalogue, expect=expect)
    except LookupError as error:
        return JsonResponse({"ok": False, "error": str(error), "position": None}, status=400)
    except RuleError as error:
        position = None if error.position is None else character_offset(text, error.position)
        return JsonResponse({"ok": False, "error": error.message, "position": position})
    count = None
    if expect == BOOLEAN:
        try:
            with transaction.atomic():  # a failed count must not break the rest of the request
                count = filter_queryset(subject.queryset_for(request.user, argument), node, catalogue).count()
        except DatabaseError:
            # e.g. an attribute stored as text that PostgreSQL cannot read as a number
            logger.exception("Counting the records of a rule failed")
            return JsonResponse({"ok": False, "error": "The records this rule selects could not be counted.",
                                 "position": None})
    return JsonResponse({"ok": True, "text": to_text(node), "ast": to_json(node), "count": count})
