import json

from django import forms


class ChoiceLinesInput(forms.Textarea):
    """A choice field's allowed values as a scheme administrator types them: one per line, or on one
    line separated by commas; a JSON list is taken as it is. The model's JSON field reads the list."""

    def __init__(self, attrs=None):
        super().__init__({"rows": 4, **(attrs or {})})

    def value_from_datadict(self, data, files, name):
        text = super().value_from_datadict(data, files, name)
        if text is None or text.strip().startswith("["):
            return text  # a JSON list (or nothing): the JSON field checks it
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        values = [value.strip() for value in lines[0].split(",")] if len(lines) == 1 else lines
        return json.dumps([value for value in values if value])

    def format_value(self, value):
        """One value per line (the JSON field hands over the list as JSON text)."""
        try:
            values = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            return value  # what was typed, shown again with its error
        if isinstance(values, list) and all(isinstance(item, str) and "\n" not in item for item in values) and not (
                len(values) == 1 and "," in values[0]):  # one value with a comma would read as several
            return "\n".join(values)
        return super().format_value(value)
