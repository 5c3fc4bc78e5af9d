"""Reading a failure chain for the user's message."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from workflows import gateway_config_status as render
from workflows.failures import failure_causes


def chained() -> ApplicationError:
    try:
        try:
            raise ApplicationError(
                "(PublicIPPrefixLengthMismatch) The prefix has length 30, the pool needs 31",
                type="AzurePublicIPPrefixLengthMismatch",
            )
        except ApplicationError as azure:
            raise ApplicationError("Activity task failed") from azure
    except ApplicationError as outer:
        return outer


def test_causes_are_listed_outermost_first() -> None:
    assert failure_causes(chained()) == [
        "Activity task failed",
        "(PublicIPPrefixLengthMismatch) The prefix has length 30, the pool needs 31",
    ]


def test_the_user_reads_azures_message_not_the_wrapper() -> None:
    message = render.failure_message("public IP prefix", failure_causes(chained()))
    assert message == (
        "public IP prefix failed:"
        " (PublicIPPrefixLengthMismatch) The prefix has length 30, the pool needs 31"
    )


def test_a_plain_exception_still_gives_a_message() -> None:
    assert failure_causes(ValueError()) == ["ValueError"]
