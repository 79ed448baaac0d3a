"""``crm-es settings …``: what an installation keeps about itself and an admin may change."""

from __future__ import annotations

from typing import BinaryIO

import click

from crm_es.cli.shared import Context, emit_json

pass_ctx = click.make_pass_decorator(Context)


@click.group()
def settings() -> None:
    """The store's settings (its time zone is set by `crm-es init --timezone`).

    \b
    Example:
      crm-es settings survey-topics --set product_quality,delivery,price,packaging
    """


@settings.command("survey-topics")
@click.option(
    "--set",
    "new",
    default=None,
    metavar="A,B,…",
    help="Replace the list: topic codes (lower-case letters, digits, _), comma-separated.",
)
@click.option("--reset", is_flag=True, help="Back to the default list.")
@pass_ctx
def survey_topics_command(ctx: Context, new: str | None, reset: bool) -> None:
    """Show or change the topics a survey answer may name (its `topic`: the factor it rates).

    An answer naming another topic is refused with the allowed ones. Answers already stored
    keep their topic when it leaves the list, and the drivers report still shows it. The
    default list: product_quality (产品质量), delivery (物流配送), price (价格),
    service_attitude (服务态度), after_sale (售后), other. Prints the list as JSON.

    \b
    Examples:
      crm-es settings survey-topics
      crm-es settings survey-topics --set product_quality,delivery,price,packaging
      crm-es settings survey-topics --reset
    """
    from crm_es.domain.survey_topics import DEFAULT_SURVEY_TOPICS, TOPIC_LABELS
    from crm_es.store.survey_topics import set_survey_topics, survey_topics

    if new is not None and reset:
        raise click.UsageError("give --set or --reset, not both")
    app = ctx.app
    if new is not None:
        topics = set_survey_topics(app, new.split(","))
    elif reset:
        topics = set_survey_topics(app, None)
    else:
        topics = survey_topics(app.store.settings).current()
    emit_json(
        {
            "survey_topics": list(topics),
            "default": topics == DEFAULT_SURVEY_TOPICS,
            "labels": {t: TOPIC_LABELS[t] for t in topics if t in TOPIC_LABELS},
        }
    )


@settings.command("pipeline")
@click.option(
    "--set",
    "new",
    type=click.File("rb"),
    default=None,
    metavar="FILE",
    help="Replace the pipeline by the JSON in FILE ('-': stdin), as printed by this command.",
)
@click.option("--reset", is_flag=True, help="Back to the default pipeline.")
@pass_ctx
def pipeline_command(ctx: Context, new: BinaryIO | None, reset: bool) -> None:
    """Show or change the sales pipeline: the open stages an opportunity moves through, in
    order, each with a label and a win probability (%), and the labels of won and lost.

    A stage key is lower-case ASCII (letters, digits, _). An opportunity opened at or moved to
    a stage not listed is refused with the allowed ones; opportunities already at a stage keep
    it when it leaves the list. Each opportunity keeps the probability its stage had when it
    got there, so the pipeline report's forecast of a past date never moves. The default:
    lead 线索 10, qualified 需求确认 25, proposal 方案报价 50, negotiation 谈判 75, then
    赢单 (won) / 输单 (lost). Prints the pipeline as JSON.

    \b
    Examples:
      crm-es settings pipeline > pipeline.json
      crm-es settings pipeline --set pipeline.json
      crm-es settings pipeline --reset
    """
    from crm_es.domain.pipeline import DEFAULT_PIPELINE
    from crm_es.store.pipeline_setting import pipeline_setting, set_pipeline

    if new is not None and reset:
        raise click.UsageError("give --set or --reset, not both")
    app = ctx.app
    if new is not None:
        pipeline = set_pipeline(app, new.read())
    elif reset:
        pipeline = set_pipeline(app, None)
    else:
        pipeline = pipeline_setting(app.store.settings).current()
    emit_json({"pipeline": pipeline, "default": pipeline == DEFAULT_PIPELINE})
