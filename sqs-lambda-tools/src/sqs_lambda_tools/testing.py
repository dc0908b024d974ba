"""Events, contexts and bodies for a service's unit tests, shaped as Lambda delivers them.

The project is the tools' current one (the ``pyproject.toml`` with ``[tool.sqsl]`` found
from the working directory, as pytest runs from the service's root) unless ``project`` is
given::

    from sqs_lambda_tools.testing import make_context, make_sqs_event, sample_bodies

    def test_each_order_is_recorded() -> None:
        event = make_sqs_event(sample_bodies(3))
        response = lambda_handler(event, make_context())
        assert response == {"batchItemFailures": []}

- :func:`make_sqs_event`: one record per body; FIFO (the project's queue type unless
  ``fifo`` says) records get their message group from ``group_ids``, else the body's
  ``[tool.sqsl.samples] group_key`` field.
- :func:`make_sqs_record`: one record, with its receive count, message id or group.
- :func:`make_context`: a Lambda context for the project's function whose
  ``get_remaining_time_in_millis`` counts down from its timeout.
- :func:`sample_bodies`: the bodies of the project's sample function, as sent.

The event's ``TypedDict`` shapes (:class:`SQSEvent`, :class:`SQSRecord`) match the ones a
typed handler declares, so a handler annotated with its own accepts these events.
"""

from __future__ import annotations

from .lambda_context import FakeLambdaContext, make_context
from .project import Project, current
from .samples import sample_body, sample_function
from .sqs_events import SQSEvent, SQSRecord, make_sqs_event, make_sqs_record

__all__ = [
    "FakeLambdaContext",
    "SQSEvent",
    "SQSRecord",
    "make_context",
    "make_sqs_event",
    "make_sqs_record",
    "sample_bodies",
]


def sample_bodies(count: int, *, run_id: str = "test", project: Project | None = None) -> list[str]:
    """The bodies of samples 1 to ``count`` of ``run_id`` from the project's sample function
    (``[tool.sqsl.samples] function``): a dict as its JSON, a str as it is.

    The same ``run_id`` gives the same bodies, so a test that sends one twice sees a
    duplicate; another ``run_id`` gives new ones.
    """
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    project = project or current()
    function = sample_function(project)
    return [sample_body(function, number, run_id, project) for number in range(1, count + 1)]
