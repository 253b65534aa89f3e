"""The notification a file's problems send: an ASCII-safe Subject and the report's summary,
through SNS. A notification that cannot be sent never fails the file it is about."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from achieveit_sync.ingest.report import FileReport, FileStatus
from achieveit_sync.ingest.summary import plural

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

log = logging.getLogger(__name__)

_MAX_SUBJECT_CHARS = 99  # SNS: fewer than 100 characters
_MAX_MESSAGE_CHARS = 200_000  # SNS allows 256 KB; the message lists a handful of reasons
_GROUPS_IN_A_NOTIFICATION = 10
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_NOT_SUBJECT_TEXT = re.compile(r"[^\x20-\x7e]+")
_SURROGATES = re.compile("[\ud800-\udfff]")


class Notifier(Protocol):
    def notify(self, subject: str, message: str) -> bool:
        """Send the notification; ``False`` when it could not be sent (never raises)."""
        ...


@dataclass
class SnsNotifier:
    client: SNSClient
    topic_arn: str | None

    def notify(self, subject: str, message: str) -> bool:
        if not self.topic_arn:
            return True
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.publish(
                TopicArn=self.topic_arn,
                Subject=sns_subject(subject),
                Message=printable(message)[:_MAX_MESSAGE_CHARS],
            )
        except (BotoCoreError, ClientError) as exc:
            # The file is handled and its report stored: a lost notification is logged and
            # counted (NotificationsFailed, with an alarm), never a reason to redo the file.
            log.error("notification not sent", extra={"subject": subject, "error": str(exc)})  # noqa: TRY400
            return False
        return True


def file_subject(report: FileReport, key: str) -> str:
    name = key.rsplit("/", 1)[-1] or key
    counts = report.counts
    if report.status is FileStatus.FAILED:
        return f"AchieveIt ingest failed: {name}"
    said = []
    if counts.rejected:
        said.append(f"{plural(counts.rejected, 'row')} rejected")
    if counts.ambiguous:
        said.append(f"{plural(counts.ambiguous, 'row')} to check (may have been applied)")
    if report.ignored:
        said.append("columns ignored")
    return f"AchieveIt ingest: {', '.join(said) or report.status.value} in {name}"


def file_message(report: FileReport) -> str:
    """The same summary the report opens with, then where to look."""
    lines = [
        f"File: {report.source['name']}",
        f"Status: {report.status.value}",
        "",
        *report.summary_lines(groups=_GROUPS_IN_A_NOTIFICATION),
    ]
    if report.file_error and report.file_error.get("hint"):
        lines.append(f"What to do: {report.file_error['hint']}")
    lines.append("")
    lines.extend(f"{name.capitalize()}: {uri}" for name, uri in report.outputs.items())
    return "\n".join(lines)


def sns_subject(text: str) -> str:
    """A Subject SNS accepts: ASCII (accents transliterated, other characters as ``?``),
    no line breaks or control characters, starting with a letter, digit or punctuation,
    under 100 characters. SNS refuses the whole Publish call otherwise."""
    spaced = _CONTROL_CHARACTERS.sub(" ", printable(text))  # line breaks, tabs
    decomposed = unicodedata.normalize("NFKD", spaced)
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    subject = " ".join(_NOT_SUBJECT_TEXT.sub("?", ascii_text).split())
    if len(subject) > _MAX_SUBJECT_CHARS:
        subject = subject[: _MAX_SUBJECT_CHARS - 3] + "..."
    return subject or "AchieveIt ingest"


def printable(text: str) -> str:
    """``text`` that encodes as UTF-8: lone surrogates shown as ``\\udXXX``."""
    if _SURROGATES.search(text):
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
