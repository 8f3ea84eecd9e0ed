"""Helpers shared by the tests, imported one way: `from tests.support.<module> import ...`.

- reference: the official Taskcluster reference in ../shared (fails in CI when missing)
- postgres, amqp: test databases and RabbitMQ queues
- server: the real `taskjournal dev` process and task definitions (end-to-end tests)
- auth: a frozen official client and converters to AuthRequests (auth unit tests)
- domain: a fixed clock and tasks driven into a given state (domain unit tests)
"""
