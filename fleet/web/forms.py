"""Forms for the state changes a reviewer can make from the violations page."""
from datetime import timedelta

from django import forms
from django.utils import timezone

MAX_WAIVER_DAYS = 365


class ExpiryForm(forms.Form):
    """A waiver's end: in the future, at most a year ahead."""

    expires_at = forms.DateTimeField(help_text="UTC, at most a year ahead", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def clean_expires_at(self):
        value = self.cleaned_data["expires_at"]
        now = timezone.now()
        if value <= now:
            raise forms.ValidationError("the expiry must be in the future")
        if value > now + timedelta(days=MAX_WAIVER_DAYS):
            raise forms.ValidationError(f"a waiver lasts at most {MAX_WAIVER_DAYS} days")
        return value


class WaiveForm(ExpiryForm):
    justification = forms.CharField(min_length=10, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class AcknowledgeForm(forms.Form):
    note = forms.CharField(max_length=500, required=False)


BULK_MAX = 100  # violations one bulk action may touch (two list pages)


class BulkForm(forms.Form):
    """Acknowledge or waive the violations ticked on the list page."""

    action = forms.ChoiceField(choices=[("acknowledge", "acknowledge"), ("waive", "waive")])
    ids = forms.TypedMultipleChoiceField(coerce=int, choices=())
    note = forms.CharField(max_length=500, required=False)
    justification = forms.CharField(min_length=10, max_length=2000, required=False)
    expires_at = forms.DateTimeField(required=False)

    def __init__(self, data=None):
        super().__init__(data)
        raw = data.getlist("ids") if data is not None else []
        # Any id the form is sent may be chosen; which exist is the view's question.
        self.fields["ids"].choices = [(v, v) for v in raw if v.isascii() and v.isdigit() and len(v) <= 12]

    def clean_ids(self):
        ids = self.cleaned_data["ids"]
        if len(ids) > BULK_MAX:
            raise forms.ValidationError(f"at most {BULK_MAX} violations at once (this has {len(ids)})")
        return sorted(set(ids))

    def clean(self):
        data = super().clean()
        if data.get("action") == "waive":
            if len((data.get("justification") or "").strip()) < 10:
                self.add_error("justification", "a waiver needs a justification of at least 10 characters")
            expiry = ExpiryForm({"expires_at": self.data.get("expires_at", "")})
            if expiry.is_valid():
                data["expires_at"] = expiry.cleaned_data["expires_at"]
            else:
                self.add_error("expires_at", " ".join(expiry.errors.get("expires_at", [])))
        return data
