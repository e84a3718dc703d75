"""The fault-injecting SMTP server the engine tests rely on, driven with plain smtplib."""

import smtplib
import socket
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from django.core import mail

from campaigns.tests.fake_smtp import FakeSMTPServer


@pytest.fixture
def server():
    with FakeSMTPServer() as fake:
        yield fake


def _message(to: str, body: str = "Hello\n") -> bytes:
    message = EmailMessage()
    message["From"] = "news@example.com"
    message["To"] = to
    message["Subject"] = f"For {to}"
    message.set_content(body)
    # CRLF line ends, as every real client sends (smtplib passes bytes through untouched).
    return message.as_bytes(policy=SMTP)


def _connect(server) -> smtplib.SMTP:
    return smtplib.SMTP(server.host, server.port, timeout=5)


def test_records_envelope_and_raw_bytes_of_each_message(server):
    with _connect(server) as client:
        client.sendmail("news@example.com", ["a@example.com"], _message("a@example.com"))
        client.sendmail("news@example.com", ["b@example.com", "c@example.com"], _message("b@example.com"))

    assert [m.rcpt_tos for m in server.messages] == [("a@example.com",), ("b@example.com", "c@example.com")]
    assert server.messages[0].mail_from == "news@example.com"
    assert server.messages[0].parsed()["Subject"] == "For a@example.com"
    assert server.recipients() == ["a@example.com", "b@example.com", "c@example.com"]


def test_undoes_dot_stuffing_so_the_body_arrives_as_sent(server):
    with _connect(server) as client:
        client.sendmail("news@example.com", ["a@example.com"], _message("a@example.com", ".leading dot\n..two\n"))

    assert server.messages[0].data.endswith(b"\r\n\r\n.leading dot\r\n..two\r\n")


def test_listens_on_an_ephemeral_loopback_port_and_stops_cleanly():
    with FakeSMTPServer() as first, FakeSMTPServer() as second:
        assert first.host == "127.0.0.1"
        assert first.port != second.port
        assert first.url == f"smtp://127.0.0.1:{first.port}"
    with pytest.raises(OSError):
        smtplib.SMTP(first.host, first.port, timeout=1)


def test_temporary_failure_on_the_nth_message_answers_421_and_closes(server):
    server.fail_temporarily(at=2)

    client = _connect(server)
    client.sendmail("news@example.com", ["a@example.com"], _message("a@example.com"))
    with pytest.raises(smtplib.SMTPDataError) as error:
        client.sendmail("news@example.com", ["b@example.com"], _message("b@example.com"))
    assert error.value.smtp_code == 421
    # The retry, on a new connection, goes through: the fault applied once.
    with _connect(server) as retry:
        retry.sendmail("news@example.com", ["b@example.com"], _message("b@example.com"))

    assert server.recipients() == ["a@example.com", "b@example.com"]
    assert server.attempts == 3
    assert server.connections == 2


def test_temporary_failure_can_last_several_attempts(server):
    server.fail_temporarily(at=1, times=2)

    codes = []
    for _ in range(3):
        try:
            with _connect(server) as client:
                client.sendmail("news@example.com", ["a@example.com"], _message("a@example.com"))
            codes.append(250)
        except smtplib.SMTPDataError as error:
            codes.append(error.smtp_code)

    assert codes == [421, 421, 250]


def test_temporary_failure_window_refuses_everything_until_it_ends(server):
    server.fail_temporarily_for(60)
    with _connect(server) as client, pytest.raises(smtplib.SMTPDataError):
        client.sendmail("news@example.com", ["a@example.com"], _message("a@example.com"))

    server.fail_temporarily_for(0)
    with _connect(server) as client:
        client.sendmail("news@example.com", ["a@example.com"], _message("a@example.com"))
    assert server.recipients() == ["a@example.com"]


def test_rejected_recipient_gets_a_permanent_550_and_the_connection_stays_usable(server):
    server.reject_recipient("Gone@Example.com")

    with _connect(server) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as error:
            client.sendmail("news@example.com", ["gone@example.com"], _message("gone@example.com"))
        client.sendmail("news@example.com", ["ok@example.com"], _message("ok@example.com"))

    assert error.value.recipients["gone@example.com"][0] == 550
    assert server.recipients() == ["ok@example.com"]


def test_rejected_recipient_is_left_out_of_a_multi_recipient_message(server):
    server.reject_recipient("gone@example.com")

    with _connect(server) as client:
        refused = client.sendmail("news@example.com", ["gone@example.com", "ok@example.com"], _message("x"))

    assert refused == {"gone@example.com": (550, b"5.1.1 Mailbox unavailable")}
    assert server.messages[0].rcpt_tos == ("ok@example.com",)


def test_dropped_connection_after_n_messages_keeps_those_n(server):
    server.drop_connection(after=2)

    client = _connect(server)
    client.sendmail("news@example.com", ["a@example.com"], _message("a@example.com"))
    client.sendmail("news@example.com", ["b@example.com"], _message("b@example.com"))
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.sendmail("news@example.com", ["c@example.com"], _message("c@example.com"))
    with _connect(server) as again:
        again.sendmail("news@example.com", ["c@example.com"], _message("c@example.com"))

    assert server.recipients() == ["a@example.com", "b@example.com", "c@example.com"]


def test_dropped_connection_in_flight_reads_the_message_but_never_replies(server):
    server.drop_connection(after=1, in_flight=True)

    client = _connect(server)
    client.sendmail("news@example.com", ["a@example.com"], _message("a@example.com"))
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.sendmail("news@example.com", ["b@example.com"], _message("b@example.com"))

    assert server.recipients() == ["a@example.com"]
    assert [m.rcpt_tos for m in server.in_flight] == [("b@example.com",)]


def test_reset_forgets_messages_and_faults(server):
    server.reject_recipient("a@example.com")
    with _connect(server) as client:
        client.sendmail("news@example.com", ["b@example.com"], _message("b@example.com"))

    server.reset()
    with _connect(server) as client:
        client.sendmail("news@example.com", ["a@example.com"], _message("a@example.com"))

    assert server.recipients() == ["a@example.com"]


def test_mailers_setting_points_djangos_smtp_backend_at_the_server(server, settings):
    settings.MAILERS = server.mailers_setting()

    mail.send_mail("Subject", "Body", "news@example.com", ["reader@example.com"])

    assert server.recipients() == ["reader@example.com"]
    assert server.messages[0].parsed()["Subject"] == "Subject"


def test_advertises_pipelining_unless_switched_off():
    with FakeSMTPServer() as on, FakeSMTPServer(pipelining=False) as off:
        with _connect(on) as client:
            client.ehlo()
            assert client.has_extn("pipelining")
        with _connect(off) as client:
            client.ehlo()
            assert not client.has_extn("pipelining")


def test_answers_pipelined_commands_in_order_and_counts_them(server):
    server.reject_recipient("gone@example.com")
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        replies = sock.makefile("rb")
        replies.readline()  # greeting
        # Two messages' commands, each MAIL/RCPT/DATA in one write, as an RFC 2920 client sends.
        sock.sendall(b"MAIL FROM:<news@example.com>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n")
        codes = [replies.readline()[:3] for _ in range(3)]
        sock.sendall(_message("a@example.com") + b".\r\n")
        codes.append(replies.readline()[:3])
        sock.sendall(b"MAIL FROM:<news@example.com>\r\nRCPT TO:<gone@example.com>\r\nDATA\r\nQUIT\r\n")
        codes += [replies.readline()[:3] for _ in range(4)]

    assert codes == [b"250", b"250", b"354", b"250", b"250", b"550", b"503", b"221"]
    assert server.recipients() == ["a@example.com"]
    assert server.pipelined == 2


def test_a_client_waiting_for_each_reply_is_not_counted_as_pipelining(server):
    with _connect(server) as client:
        client.sendmail("news@example.com", ["a@example.com"], _message("a@example.com"))

    assert server.pipelined == 0
