"""Blocking access to RabbitMQ for the CLI, the bench and the tests: confirmed publishes, emptied queues.

The web tier publishes through its own asyncio publisher (producers/publisher.py); this is the
synchronous counterpart for tools that publish from a plain thread.
"""

from __future__ import annotations

import pika

from contracts.topology import ALL_ROUTES, queue_declarations
from hookyard.errors import PublishFailed, ServiceUnavailable


class ConfirmingPublisher:
    """One channel with publisher confirms. ``publish`` returns only once RabbitMQ confirmed."""

    def __init__(self, amqp_url: str) -> None:
        try:
            self.connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        except pika.exceptions.AMQPError as exc:
            raise ServiceUnavailable("RabbitMQ", repr(exc)) from exc
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.declared: set[str] = set()

    def __enter__(self) -> ConfirmingPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def publish(self, queue: str, body: bytes) -> None:
        """A persistent message to ``queue`` (declared as Dramatiq declares it), or PublishFailed."""
        try:
            if queue not in self.declared:
                for name, arguments in queue_declarations(queue):
                    self.channel.queue_declare(name, durable=True, arguments=arguments)
                self.declared.add(queue)
            self.channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2), mandatory=True)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
            raise PublishFailed(f"RabbitMQ refused a message to {queue!r}: {exc!r}") from exc
        except pika.exceptions.AMQPError as exc:
            raise PublishFailed(f"RabbitMQ connection failed while publishing to {queue!r}: {exc!r}") from exc

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


def purge(amqp_url: str) -> None:
    """Declare every Hookyard queue of the vhost in ``amqp_url`` and empty it."""
    with ConfirmingPublisher(amqp_url) as broker:
        for route in ALL_ROUTES:
            for name, arguments in queue_declarations(route.queue):
                broker.channel.queue_declare(name, durable=True, arguments=arguments)
                broker.channel.queue_purge(name)
