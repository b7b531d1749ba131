"""The app's queue, topic, bucket and Kinesis triggers, attached to a pipeline.

:func:`attach_sources` reads the triggers from the deployment's settings
(:class:`local.template.EventTriggers`), finds their resources among those
:func:`local.resources.create_resources` made, and adds to the pipeline:

* an :class:`local.sqs.QueueMapping` per ``on_sqs_message`` (its own pollers, the
  function invoked synchronously);
* a :class:`local.sns.TopicSubscription` per ``on_sns_message`` and a
  :class:`local.s3.BucketNotifications` per bucket with ``on_s3_event`` functions, both
  invoking asynchronously through the pipeline's :class:`local.asyncinvoke.AsyncInvocations`;
* a stream mapping per ``on_kinesis_record`` (:class:`local.kinesis.KinesisReader`).

Example::

    created = create_resources(clients, settings, needed)
    attach_sources(pipeline, clients, created, settings, region, account)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from local.kinesis import KinesisReader
from local.pipeline import Pipeline
from local.resources import CreatedResources, ResourceClients
from local.s3 import BucketNotifications
from local.sns import TopicSubscription
from local.sqs import QueueMapping
from local.template import QUEUE_DEFAULT_VISIBILITY_SECONDS, BucketTrigger, ProjectSettings

Hop = Callable[[str], None]


def attach_sources(
    pipeline: Pipeline,
    clients: ResourceClients,
    created: CreatedResources,
    settings: ProjectSettings,
    region: str,
    account: str,
    on_hop: Hop | None = None,
) -> None:
    """Add every queue, topic, bucket and Kinesis trigger of the app to ``pipeline``."""
    say = on_hop or (lambda line: None)
    triggers = settings.triggers
    visibility = {
        q.name: float(q.attributes.get("VisibilityTimeout", QUEUE_DEFAULT_VISIBILITY_SECONDS))
        for q in settings.queues.values()
    }
    for trigger in triggers.queues.values():
        url = created.queues[trigger.queue]
        arn = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        mapping = QueueMapping(
            trigger,
            pipeline.functions,
            clients.sqs,
            url,
            arn,
            region,
            visibility.get(trigger.queue, QUEUE_DEFAULT_VISIBILITY_SECONDS),
            on_hop=say,
        )
        mapping.start()
        pipeline.sources.append(mapping)
        say(f"queue trigger {trigger.function}: {trigger.as_properties()}")
    for topic in triggers.topics.values():
        pipeline.sources.append(
            TopicSubscription(
                topic,
                clients.sqs,
                clients.sns,
                created.topics[topic.topic],
                pipeline.invocations.submit,
                on_hop=say,
            )
        )
        say(f"topic trigger {topic.function}: {topic.topic}")
    by_bucket: dict[str, list[BucketTrigger]] = defaultdict(list)
    for bucket in triggers.buckets.values():
        by_bucket[bucket.bucket].append(bucket)
        say(
            f"bucket trigger {bucket.function}: {bucket.bucket} {list(bucket.events)}"
            f" prefix={bucket.prefix!r} suffix={bucket.suffix!r}"
        )
    for name, bucket_triggers in sorted(by_bucket.items()):
        pipeline.sources.append(
            BucketNotifications(
                name, bucket_triggers, clients.sqs, clients.s3, pipeline.invocations.submit, say
            )
        )
    for stream in triggers.kinesis.values():
        role = f"arn:aws:iam::{account}:role/{pipeline.functions.deployed_name(stream.function)}"
        reader = KinesisReader(
            clients.kinesis, stream.stream_arn, region, stream.starting_position, role
        )
        pipeline.add_stream(stream, reader)
        say(f"kinesis trigger {stream.function}: {stream.as_properties()}")
