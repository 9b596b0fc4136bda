from django.apps import AppConfig


class TaliaConfig(AppConfig):
    name = "talia"
    verbose_name = "TalIA"

    def ready(self) -> None:
        from talia import checks  # noqa: F401  (registers the system checks)
