"""Forms for the state changes a reviewer can make from the violations page."""
from datetime import timedelta

from django import forms
from django.utils import timezone

MAX_WAIVER_DAYS = 365


class WaiveForm(forms.Form):
    justification = forms.CharField(min_length=10, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    expires_at = forms.DateTimeField(help_text="UTC, at most a year ahead", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def clean_expires_at(self):
        value = self.cleaned_data["expires_at"]
        now = timezone.now()
        if value <= now:
            raise forms.ValidationError("the expiry must be in the future")
        if value > now + timedelta(days=MAX_WAIVER_DAYS):
            raise forms.ValidationError(f"a waiver lasts at most {MAX_WAIVER_DAYS} days")
        return value


class AcknowledgeForm(forms.Form):
    note = forms.CharField(max_length=500, required=False)
