from django.apps import AppConfig


class TaliaConfig(AppConfig):
    name = "talia"
    verbose_name = "TalIA"

    def ready(self) -> None:
        from celery.signals import before_task_publish, task_prerun
        from django.conf import settings

        from talia import (
            checks,  # noqa: F401  (registers the system checks)
            observability,
        )

        # A task's log lines carry the id of the request that queued it, and nothing of the task that ran
        # before it in the same thread.
        before_task_publish.connect(observability.task_published, weak=False, dispatch_uid="talia.observability")
        task_prerun.connect(observability.task_started, weak=False, dispatch_uid="talia.observability")
        observability.setup_sentry(
            settings.SENTRY_DSN,
            environment=settings.SENTRY_ENVIRONMENT,
            traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
        )
