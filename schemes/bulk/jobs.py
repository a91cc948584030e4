"""The pipeline's jobs: checking an upload and importing it (see services)."""

from workflows.jobs import job_kind

from . import services
from .models import Upload


@job_kind(services.VALIDATE_JOB, "Check an uploaded file")
def validate_upload(job, progress):
    return services.validate(Upload.objects.get(pk=job.params["upload"]), progress)


@job_kind(services.IMPORT_JOB, "Import an uploaded file")
def import_upload(job, progress):
    return services.run_import(Upload.objects.get(pk=job.params["upload"]), job, progress)
