from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "fleet.accounts"
    label = "accounts"
    verbose_name = "Accounts, roles and audit"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import receivers  # noqa: F401  (connects the audit receivers)
        from .roles import roles_sync_after_migrate

        # Other apps add models (and so permissions) over time: re-sync the role groups after every migrate.
        post_migrate.connect(roles_sync_after_migrate, dispatch_uid="accounts-roles-sync")
