"""REST API views. Staff (leads, ML engineers) reach everything; labelers only `me/`.

Imports stream the request body line by line into `annotate.io` (atomic, line-numbered);
exports stream `annotate.io` generators through StreamingHttpResponse in constant memory.
Work that needs a model (scoring, evaluation) is queued as Celery tasks on commit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Model, Prefetch, QuerySet
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.authtoken.models import Token
from rest_framework.decorators import api_view, parser_classes, permission_classes
from rest_framework.decorators import renderer_classes as use_renderers
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotate import dispatch
from annotate.api import serializers as s
from annotate.api.formats import (
    JSONL_MEDIA_TYPE,
    JSONL_MEDIA_TYPES,
    JSONLinesAltParser,
    JSONLinesParser,
    JSONLinesRenderer,
    UploadTooLarge,
    encoded_lines,
)
from annotate.api.pagination import BoundedLimitOffsetPagination, SampleCursorPagination
from annotate.api.permissions import IsActiveUser, IsStaff
from annotate.checkpoints import validate_checkpoint_dir
from annotate.generations import (
    PipelineError,
    SelectionError,
    open_generation,
    preview_selection,
    resolve_scores,
    start_generation,
)
from annotate.io import ImportFailed, import_problems, import_samples
from annotate.io.base import limits, read_lines
from annotate.io.prm800k import iter_prm800k_lines
from annotate.io.stepwise import StepwiseExport
from annotate.models import (
    Assignment,
    AuditEvent,
    Campaign,
    Checkpoint,
    Generation,
    Problem,
    Sample,
    Score,
    StepRating,
)
from annotate.models.audit import SELECTION_FIELDS

STAFF = [IsStaff]
#: Labels read per query while exporting: bounds the export's memory whatever the total.
EXPORT_CHUNK = 2000

# --- helpers ------------------------------------------------------------------------------


def campaign_or_404(slug: str) -> Campaign:
    return get_object_or_404(Campaign, slug=slug)


def validated_query(serializer_class: type, request: Request) -> dict[str, Any]:
    """Query parameters checked by a serializer: a bad value is a 400, never a 500."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def validated_body(serializer_class: type, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def save_validated(instance: Model) -> Model:
    """Run the model's own validation (check constraints included) before saving."""
    try:
        instance.full_clean()
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(exc.message_dict) from None
    instance.save()
    return instance


# --- campaigns ----------------------------------------------------------------------------


class CampaignList(generics.ListCreateAPIView):
    """Campaigns (staff). POST creates one with its selection and labeling settings."""

    permission_classes = STAFF
    pagination_class = BoundedLimitOffsetPagination
    queryset = Campaign.objects.order_by("slug")

    def get_serializer_class(self):
        if self.request is not None and self.request.method == "POST":
            return s.CampaignCreateSerializer
        return s.CampaignListSerializer

    @extend_schema(request=s.CampaignCreateSerializer, responses={201: s.CampaignDetailSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = validated_body(s.CampaignCreateSerializer, request)
        campaign = save_validated(Campaign(**data))
        chosen = {name: str(value) for name, value in data.items() if name in SELECTION_FIELDS}
        AuditEvent.record(
            request.user,
            "api",
            AuditEvent.Action.CAMPAIGN_SETTINGS,
            f"campaign {campaign.slug}",
            campaign=campaign,
            created=True,
            settings=chosen,
        )
        return Response(campaign_detail(campaign), status=status.HTTP_201_CREATED)


def campaign_detail(campaign: Campaign) -> dict[str, Any]:
    campaign.counts = {
        "problems": Problem.objects.filter(campaign=campaign).count(),
        "samples": Sample.objects.filter(campaign=campaign).count(),
        "generations": Generation.objects.filter(campaign=campaign).count(),
        "checkpoints": Checkpoint.objects.filter(campaign=campaign).count(),
    }
    return s.CampaignDetailSerializer(campaign).data


class CampaignDetail(generics.RetrieveAPIView):
    """One campaign's settings and row counts (staff)."""

    permission_classes = STAFF
    serializer_class = s.CampaignDetailSerializer
    queryset = Campaign.objects.all()
    lookup_field = "slug"

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(campaign_detail(self.get_object()))


# --- problems and samples -----------------------------------------------------------------


class ProblemList(generics.ListAPIView):
    """A campaign's problems in import order (staff)."""

    permission_classes = STAFF
    pagination_class = BoundedLimitOffsetPagination
    serializer_class = s.ProblemListSerializer

    @extend_schema(parameters=[s.ProblemFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return Problem.objects.none()
        campaign = campaign_or_404(self.kwargs["slug"])
        filters = validated_query(s.ProblemFilterSerializer, self.request)
        qs = Problem.objects.filter(campaign=campaign).order_by("id")
        if "split" in filters:
            qs = qs.filter(split=filters["split"])
        return qs


class ProblemDetail(generics.RetrieveAPIView):
    permission_classes = STAFF
    serializer_class = s.ProblemDetailSerializer

    def get_queryset(self) -> QuerySet:
        return Problem.objects.filter(campaign__slug=self.kwargs.get("slug"))


class SampleList(generics.ListAPIView):
    """A campaign's samples in import order, by cursor (the pool may hold 10⁷ rows)."""

    permission_classes = STAFF
    pagination_class = SampleCursorPagination
    serializer_class = s.SampleListSerializer

    @extend_schema(parameters=[s.SampleFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return Sample.objects.none()
        campaign = campaign_or_404(self.kwargs["slug"])
        filters = validated_query(s.SampleFilterSerializer, self.request)
        qs = Sample.objects.for_campaign(campaign).select_related("problem")
        if filters.get("problem"):
            qs = qs.filter(problem__unique_id=filters["problem"])
        if filters.get("is_correct") is not None:
            qs = qs.filter(is_correct=filters["is_correct"])
        return qs


class SampleDetail(generics.RetrieveAPIView):
    """One sample with its steps and every checkpoint's scores (staff)."""

    permission_classes = STAFF
    serializer_class = s.SampleDetailSerializer

    def get_queryset(self) -> QuerySet:
        return (
            Sample.objects.filter(campaign__slug=self.kwargs.get("slug"))
            .select_related("problem")
            .prefetch_related(Prefetch("scores", queryset=Score.objects.order_by("checkpoint")))
        )


UPLOAD_PARSERS = [JSONLinesParser, JSONLinesAltParser, MultiPartParser]
UPLOAD_REQUEST = {
    JSONL_MEDIA_TYPE: OpenApiTypes.BINARY,
    "multipart/form-data": s.UploadFileSerializer,
}
UPLOAD_RESPONSES = {
    201: s.ImportSummarySerializer,
    400: OpenApiResponse(
        s.ImportErrorSerializer,
        description="A malformed line: nothing was written.",
        examples=[
            OpenApiExample(
                "bad line",
                value={"detail": "line 3: invalid JSON: Expecting value", "line": 3},
            )
        ],
    ),
    413: OpenApiResponse(description="The body is over STEPWISE_MAX_UPLOAD_BYTES."),
}


def upload_lines(request: Request) -> Iterator[str]:
    """The uploaded JSONL as text lines: a raw JSONL body, or the `file` of a multipart form."""
    content_type = request.content_type.split(";")[0].strip().lower()
    max_upload, _ = limits()
    if int(request.META.get("CONTENT_LENGTH") or 0) > max_upload:
        # Refused before a multipart body is spooled to disk; raw bodies are also counted.
        raise UploadTooLarge(f"upload is larger than {max_upload:,} bytes")
    if content_type in JSONL_MEDIA_TYPES:
        # Read the WSGI body line by line: never `request.body`, which would hold it all.
        return read_lines(request._request)
    if content_type == "multipart/form-data":
        upload = request.FILES.get("file")
        if upload is None:
            raise exceptions.ValidationError({"file": ["Attach the JSONL file as `file`."]})
        return read_lines(upload)
    raise exceptions.UnsupportedMediaType(content_type or "(none)")


def run_import(importer, request: Request, campaign: Campaign, **options: Any) -> Response:
    """Run an atomic import; a bad line is a 400 naming it, and nothing is written."""
    lines = upload_lines(request)
    try:
        summary = importer(lines, campaign, **options)
    except ImportFailed as exc:
        return Response({"detail": str(exc), "line": exc.line}, status=400)
    return Response(summary.as_dict(), status=status.HTTP_201_CREATED)


@extend_schema(
    summary="Upload problems (JSONL)",
    description="One problem a line: `unique_id`, `problem`, `ground_truth_answer` "
    "(or MATH's `answer`), optional `ground_truth_solution`/`solution`, `subject`, `level`, "
    "`split`. Atomic: a malformed line fails the whole upload with its line number. Limits "
    "(the server's environment): `STEPWISE_MAX_UPLOAD_BYTES` a body (413 above it), "
    "`STEPWISE_MAX_LINE_BYTES` a line.",
    parameters=[s.ProblemUploadQuerySerializer],
    request=UPLOAD_REQUEST,
    responses=UPLOAD_RESPONSES,
)
@api_view(["POST"])
@permission_classes(STAFF)
@parser_classes(UPLOAD_PARSERS)
def problems_upload(request: Request, slug: str) -> Response:
    campaign = campaign_or_404(slug)
    options = validated_query(s.ProblemUploadQuerySerializer, request)
    return run_import(import_problems, request, campaign, split=options["split"])


@extend_schema(
    summary="Upload samples (JSONL)",
    description="One sample a line: `id`, `unique_id` (of its problem), `steps` (a list) or "
    "`response` (split on `split_steps`, default a blank line), optional `answer`, "
    "`generator`, `verifier_score`. Answers are graded. Atomic, like the problem upload, "
    "with its limits, and at most `STEPWISE_MAX_STEPS` steps of `STEPWISE_MAX_STEP_CHARS` "
    "characters each.",
    parameters=[s.SampleUploadQuerySerializer],
    request=UPLOAD_REQUEST,
    responses=UPLOAD_RESPONSES,
)
@api_view(["POST"])
@permission_classes(STAFF)
@parser_classes(UPLOAD_PARSERS)
def samples_upload(request: Request, slug: str) -> Response:
    campaign = campaign_or_404(slug)
    options = validated_query(s.SampleUploadQuerySerializer, request)
    return run_import(import_samples, request, campaign, **options)


# --- generations --------------------------------------------------------------------------


class GenerationList(generics.ListCreateAPIView):
    """A campaign's generations, newest first; POST starts the next one (staff)."""

    permission_classes = STAFF
    pagination_class = BoundedLimitOffsetPagination
    serializer_class = s.GenerationListSerializer

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return Generation.objects.none()
        campaign = campaign_or_404(self.kwargs["slug"])
        return Generation.objects.filter(campaign=campaign).order_by("-number")

    @extend_schema(
        summary="Start the next generation",
        description='`scores: "imported"` selects on the imported verifier scores and opens '
        "the generation at once (201). With a checkpoint (`active` or an id) the generation "
        "is created pending and the GPU workers score the pool, then select (202; follow its "
        "progress on the generation). `dry_run` previews the selection on the scores stored "
        "now and writes nothing (200).",
        request=s.GenerationStartSerializer,
        responses={
            200: s.SelectionPreviewSerializer,
            201: s.GenerationDetailSerializer,
            202: s.GenerationDetailSerializer,
            400: OpenApiResponse(description="Nothing to select, or a bad score source."),
            409: OpenApiResponse(description="Another generation is still running."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        campaign = campaign_or_404(slug)
        options = validated_body(s.GenerationStartSerializer, request)
        scores = options["scores"]
        overrides = {
            key: options[key] for key in s.GenerationStartSerializer.OVERRIDES if key in options
        }
        try:
            if options["dry_run"]:
                preview = preview_selection(campaign, scores=scores, **overrides)
                return Response(preview.as_json())
            if scores != "imported":
                return start_scored_generation(request, campaign, scores, overrides)
            # Imported scores need no model: selected and opened here.
            generation, _preview = open_generation(campaign, scores=scores, **overrides)
        except SelectionError as exc:
            raise exceptions.ValidationError({"scores": [str(exc)]}) from None
        record_generation_started(request, generation, scores, overrides)
        return Response(generation_detail(generation), status=status.HTTP_201_CREATED)


def record_generation_started(
    request: Request, generation: Generation, scores: str, overrides: dict[str, Any]
) -> None:
    AuditEvent.record(
        request.user,
        "api",
        AuditEvent.Action.GENERATION_STARTED,
        f"generation {generation.number}",
        campaign=generation.campaign,
        scores=scores,
        overrides={key: str(value) for key, value in overrides.items()},
    )


def start_scored_generation(
    request: Request, campaign: Campaign, scores: str, overrides: dict[str, Any]
) -> Response:
    """Create the generation pending and queue scoring → selection on the workers."""
    checkpoint = resolve_scores(campaign, scores)
    try:
        generation = start_generation(campaign, checkpoint=checkpoint, **overrides)
    except PipelineError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    record_generation_started(request, generation, scores, overrides)
    return Response(generation_detail(generation), status=status.HTTP_202_ACCEPTED)


def generation_detail(generation: Generation) -> dict[str, Any]:
    by_state = dict(
        Assignment.objects.filter(generation=generation)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    generation.counts = {
        "selected": generation.selections.count(),
        "assignments": {state: by_state.get(state, 0) for state in Assignment.State.values},
    }
    return s.GenerationDetailSerializer(generation).data


class GenerationDetail(generics.RetrieveAPIView):
    """One generation: frozen parameters, status, progress, assignment counts (staff)."""

    permission_classes = STAFF
    serializer_class = s.GenerationDetailSerializer
    lookup_field = "number"

    def get_queryset(self) -> QuerySet:
        return Generation.objects.filter(campaign__slug=self.kwargs.get("slug"))

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(generation_detail(self.get_object()))


# --- checkpoints --------------------------------------------------------------------------


def checkpoint_path_problem(path: str) -> str | None:
    """Why `path` cannot be registered, or None. Weights load from local paths only."""
    if not os.path.isabs(path):
        return "must be an absolute path on the servers"
    if os.path.normpath(path) != path.rstrip("/") or "/../" in f"{path}/":
        return "must be a normalized path (no '..', '.', or doubled slashes)"
    if not os.path.isdir(path):
        return "no such directory on the web server (mount the checkpoints volume there)"
    return None


class CheckpointList(generics.ListCreateAPIView):
    """Checkpoints, newest first; POST registers a local weights directory (staff)."""

    permission_classes = STAFF
    pagination_class = BoundedLimitOffsetPagination

    def get_serializer_class(self):
        if self.request is not None and self.request.method == "POST":
            return s.CheckpointCreateSerializer
        return s.CheckpointListSerializer

    @extend_schema(parameters=[s.CheckpointFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet:
        qs = Checkpoint.objects.select_related("campaign").order_by("-created_at", "-id")
        if getattr(self, "swagger_fake_view", False) or self.request.method != "GET":
            return qs
        filters = validated_query(s.CheckpointFilterSerializer, self.request)
        if "campaign" in filters:
            qs = qs.filter(campaign__slug=filters["campaign"])
        if "status" in filters:
            qs = qs.filter(status=filters["status"])
        return qs

    @extend_schema(
        request=s.CheckpointCreateSerializer, responses={201: s.CheckpointDetailSerializer}
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = validated_body(s.CheckpointCreateSerializer, request)
        problem = checkpoint_path_problem(data["path"])
        if problem:
            raise exceptions.ValidationError({"path": [problem]})
        # The same check as `register_checkpoint`: loadable without remote code, head complete.
        try:
            info = validate_checkpoint_dir(data["path"], data.get("adapter"))
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict) from None
        data.setdefault("adapter", info.adapter)
        checkpoint = save_validated(Checkpoint(status=Checkpoint.Status.READY, **data))
        return Response(
            s.CheckpointDetailSerializer(checkpoint).data, status=status.HTTP_201_CREATED
        )


class CheckpointDetail(generics.RetrieveAPIView):
    permission_classes = STAFF
    serializer_class = s.CheckpointDetailSerializer
    queryset = Checkpoint.objects.select_related("campaign")


def checkpoint_campaign(checkpoint: Checkpoint, request: Request) -> Campaign:
    """The campaign named in the body, else the checkpoint's own; they must agree."""
    slug = validated_body(s.CheckpointCampaignSerializer, request).get("campaign")
    if slug is None:
        if checkpoint.campaign is None:
            raise exceptions.ValidationError(
                {"campaign": ["This checkpoint has no campaign: name one."]}
            )
        return checkpoint.campaign
    campaign = campaign_or_404(slug)
    if problem := campaign.ownership_error(checkpoint):
        raise exceptions.ValidationError({"campaign": [f"{problem.capitalize()}."]})
    return campaign


@extend_schema(
    summary="Activate a checkpoint",
    description="Make this checkpoint the one that scores the campaign's pool. Only ready "
    "(or already active) checkpoints can be activated.",
    request=s.CheckpointCampaignSerializer,
    responses={200: s.CheckpointDetailSerializer, 409: OpenApiResponse(OpenApiTypes.OBJECT)},
)
@api_view(["POST"])
@permission_classes(STAFF)
def checkpoint_activate(request: Request, pk: int) -> Response:
    checkpoint = get_object_or_404(Checkpoint.objects.select_related("campaign"), pk=pk)
    campaign = checkpoint_campaign(checkpoint, request)
    if checkpoint.status not in (Checkpoint.Status.READY, Checkpoint.Status.ACTIVE):
        return Response(
            {"detail": f"a {checkpoint.status} checkpoint cannot be activated"},
            status=status.HTTP_409_CONFLICT,
        )
    try:
        campaign.activate(checkpoint)
    except ValueError as exc:  # its status changed since it was read
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    AuditEvent.record(
        request.user,
        "api",
        AuditEvent.Action.CHECKPOINT_ACTIVATED,
        f"checkpoint {checkpoint.pk}",
        campaign=campaign,
    )
    return Response(s.CheckpointDetailSerializer(checkpoint).data)


@extend_schema(
    summary="Evaluate a checkpoint",
    description="Queue the measurement (best-of-N, first-error F1) on the GPU queue; the "
    "metrics land on the checkpoint.",
    request=s.CheckpointCampaignSerializer,
    responses={202: s.TaskQueuedSerializer},
)
@api_view(["POST"])
@permission_classes(STAFF)
def checkpoint_evaluate(request: Request, pk: int) -> Response:
    checkpoint = get_object_or_404(Checkpoint.objects.select_related("campaign"), pk=pk)
    campaign = checkpoint_campaign(checkpoint, request)
    task = dispatch.measure_checkpoint(checkpoint.pk, campaign.pk)
    return Response(
        {"queued": task, "detail": f"evaluating checkpoint {checkpoint.pk}"},
        status=status.HTTP_202_ACCEPTED,
    )


# --- exports ------------------------------------------------------------------------------


def stream_jsonl(lines: Iterable[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(encoded_lines(lines), content_type=JSONL_MEDIA_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


EXPORT_RESPONSES = {
    (200, JSONL_MEDIA_TYPE): OpenApiResponse(
        OpenApiTypes.STR, description="JSON Lines, one record a line, streamed."
    )
}


@extend_schema(
    summary="Export PRM800K JSONL",
    description="Every finished label of the campaign as a PRM800K record, streamed in "
    "constant memory. `generation` limits it to one generation (−1: screening).",
    parameters=[s.ExportQuerySerializer],
    responses=EXPORT_RESPONSES,
)
@api_view(["GET"])
@permission_classes(STAFF)
@use_renderers([JSONRenderer, JSONLinesRenderer])
def export_prm800k(request: Request, slug: str) -> StreamingHttpResponse:
    campaign = campaign_or_404(slug)
    options = validated_query(s.ExportQuerySerializer, request)
    lines = iter_prm800k_lines(
        campaign, generation=options.get("generation"), chunk_size=EXPORT_CHUNK
    )
    return stream_jsonl(lines, f"{campaign.slug}-prm800k.jsonl")


@extend_schema(
    summary="Export TRL stepwise supervision JSONL",
    description='`{"prompt", "completions", "labels"}` per finished label, steps up to and '
    "including the first error, streamed in constant memory. The `Stepwise-Skipped` header "
    "counts the labels the filters left out, by reason (labels with no rated step are "
    "found while streaming and are not in it).",
    parameters=[s.StepwiseExportQuerySerializer],
    responses=EXPORT_RESPONSES,
)
@api_view(["GET"])
@permission_classes(STAFF)
@use_renderers([JSONRenderer, JSONLinesRenderer])
def export_stepwise(request: Request, slug: str) -> StreamingHttpResponse:
    campaign = campaign_or_404(slug)
    options = validated_query(s.StepwiseExportQuerySerializer, request)
    export = StepwiseExport(campaign, chunk_size=EXPORT_CHUNK, **options)
    export.labels()  # the filters' counts, before the first byte is sent
    lines = (json.dumps(record, ensure_ascii=False) for record in export.records())
    response = stream_jsonl(lines, f"{campaign.slug}-stepwise.jsonl")
    response["Stepwise-Skipped"] = export.report()
    return response


# --- the caller's own work ----------------------------------------------------------------


@extend_schema(responses=s.MeSerializer)
@api_view(["GET"])
@permission_classes([IsActiveUser])
def me(request: Request) -> Response:
    user = request.user
    return Response({"id": user.pk, "username": user.get_username(), "is_staff": user.is_staff})


@extend_schema(
    summary="Revoke my API token",
    description="Deletes the caller's token: it stops working at once (401). A lead makes "
    "a new one in the admin.",
    request=None,
    responses={204: None},
)
@api_view(["DELETE"])
@permission_classes([IsActiveUser])
def my_token(request: Request) -> Response:
    Token.objects.filter(user=request.user).delete()
    return Response(status=status.HTTP_204_NO_CONTENT)


def own_assignments(request: Request) -> QuerySet:
    return (
        Assignment.objects.for_labeler(request.user)
        .select_related("generation", "sample__campaign", "sample__problem", "label")
        .order_by("-id")
    )


class MyAssignmentList(generics.ListAPIView):
    """The caller's own assignments, newest first; nobody sees anyone else's here."""

    permission_classes = [IsActiveUser]
    pagination_class = BoundedLimitOffsetPagination
    serializer_class = s.MyAssignmentListSerializer

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return Assignment.objects.none()
        return own_assignments(self.request)


class MyAssignmentDetail(generics.RetrieveAPIView):
    """One of the caller's assignments with its steps and ratings so far (404 if not theirs)."""

    permission_classes = [IsActiveUser]
    serializer_class = s.MyAssignmentDetailSerializer

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return Assignment.objects.none()
        return own_assignments(self.request).prefetch_related(
            Prefetch("label__ratings", queryset=StepRating.objects.order_by("step"))
        )
