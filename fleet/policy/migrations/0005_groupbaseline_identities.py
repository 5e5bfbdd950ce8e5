from django.db import migrations, models


class Migration(migrations.Migration):
    # Existing baselines keep their BDF groups and an empty `identities`: group-changed compares them on
    # BDFs, as accepted, until someone accepts again (fleet.policy.drift).
    dependencies = [("policy", "0004_drop_intent_version_triggers")]

    operations = [
        migrations.AddField(model_name="groupbaseline", name="identities", field=models.JSONField(blank=True, default=dict)),
    ]
