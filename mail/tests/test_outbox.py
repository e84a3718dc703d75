from email import message_from_bytes, policy

from django.core import mail
from django.core.mail import EmailMultiAlternatives

from mail.outbox import OutboxBackend


def _outbox(tmp_path, settings):
    backend = "mail.outbox.OutboxBackend"
    settings.MAILERS = {"default": {"BACKEND": backend, "OPTIONS": {"directory": str(tmp_path)}}}
    return mail.mailers["default"]


def test_each_message_is_one_eml_file_in_maildir_new(tmp_path, settings):
    backend = _outbox(tmp_path, settings)
    messages = [
        EmailMultiAlternatives("Hello", "plain body", "news@example.com", [f"r{i}@example.com"]) for i in range(3)
    ]
    messages[0].attach_alternative("<p>html body</p>", "text/html")

    assert backend.send_messages(messages) == 3

    files = sorted((tmp_path / "new").glob("*.eml"))
    assert len(files) == 3
    assert not list((tmp_path / "tmp").iterdir()), "no half-written files are left behind"
    parsed = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert sorted(str(m["To"]) for m in parsed) == ["r0@example.com", "r1@example.com", "r2@example.com"]
    html_message = next(m for m in parsed if m.is_multipart())
    assert html_message.get_body(("html",)).get_content().strip() == "<p>html body</p>"


def test_a_message_without_recipients_is_not_written(tmp_path, settings):
    backend = _outbox(tmp_path, settings)
    assert backend.send_messages([EmailMultiAlternatives("x", "y", "news@example.com", [])]) == 0
    assert not list((tmp_path / "new").glob("*.eml"))


def test_write_bytes_stores_a_prebuilt_message(tmp_path):
    path = OutboxBackend(directory=tmp_path, alias="default").write_bytes(b"Subject: hi\r\n\r\nbody\r\n")
    assert path.parent == tmp_path / "new"
    assert path.read_bytes().startswith(b"Subject: hi")
