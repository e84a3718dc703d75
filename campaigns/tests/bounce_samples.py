"""Bounce, complaint and auto-reply messages as mailbox readers receive them (bytes).

Shapes follow the RFCs (3464 DSN, 5965 ARF, 3834 auto-replies) and real samples of the common
non-standard formats (qmail, Exim, QQ), trimmed to what a parser may rely on.
"""

SENDER = "news@example.com"


def original_headers(recipient: str, message_id: str = "<20260101.c1.d1@example.com>") -> str:
    return (
        f"From: The Broadsheet <{SENDER}>\r\n"
        f"To: {recipient}\r\n"
        "Subject: Issue 1: Spring\r\n"
        f"Message-ID: {message_id}\r\n"
    )


def dsn(
    recipient: str,
    *,
    to: str = "bounces@bounce.example.com",
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
    message_id: str = "<dsn-1@mx.example.net>",
    original_message_id: str = "<20260101.c1.d1@example.com>",
) -> bytes:
    """An RFC 3464 delivery status notification, as Postfix writes them."""
    diagnostic = diagnostic.format(r=recipient)
    return (
        "Return-Path: <>\r\n"
        f"Delivered-To: {to}\r\n"
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {message_id}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"\r\n'
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n"
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n"
        "Arrival-Date: Mon, 30 Nov 2026 09:00:00 +0000 (UTC)\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n"
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n" + original_headers(recipient, original_message_id) + "\r\n"
        "--BOUNDARY--\r\n"
    ).encode()


def arf(recipient: str, *, to: str = "fbl@example.com", feedback_type: str = "abuse") -> bytes:
    """An RFC 5965 feedback report (a spam complaint), as Yahoo and others send them."""
    return (
        "From: feedback@arf.mail.yahoo.com\r\n"
        f"To: {to}\r\n"
        "Subject: FW: Issue 1: Spring\r\n"
        "Message-ID: <arf-1@yahoo.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="B"\r\n'
        "\r\n"
        "--B\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "This is an email abuse report.\r\n"
        "--B\r\n"
        "Content-Type: message/feedback-report\r\n"
        "\r\n"
        f"Feedback-Type: {feedback_type}\r\n"
        "User-Agent: Yahoo!-Mail-Feedback/2.0\r\n"
        "Version: 1\r\n"
        f"Original-Mail-From: <{SENDER}>\r\n"
        "Arrival-Date: Mon, 30 Nov 2026 09:00:00 +0000\r\n"
        "\r\n"
        "--B\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n" + original_headers(recipient) + "\r\n"
        "Hello\r\n"
        "--B--\r\n"
    ).encode()


def qmail_bounce(recipient: str, *, to: str = "bounces@bounce.example.com") -> bytes:
    return (
        "From: MAILER-DAEMON@mail.example.org\r\n"
        f"To: {to}\r\n"
        "Subject: failure notice\r\n"
        "Message-ID: <qmail-1@mail.example.org>\r\n"
        "\r\n"
        "Hi. This is the qmail-send program at mail.example.org.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n"
        "\r\n"
        f"<{recipient}>:\r\n"
        "Sorry, no mailbox here by that name. (#5.1.1)\r\n"
        "\r\n"
        "--- Below this line is a copy of the message.\r\n"
        "\r\n" + original_headers(recipient)
    ).encode()


def exim_mailbox_full(recipient: str, *, to: str = "bounces@bounce.example.com") -> bytes:
    return (
        "From: Mail Delivery System <Mailer-Daemon@mx.example.org>\r\n"
        f"To: {to}\r\n"
        "Subject: Mail delivery failed: returning message to sender\r\n"
        "Message-ID: <exim-1@mx.example.org>\r\n"
        "\r\n"
        "This message was created automatically by mail delivery software.\r\n"
        "\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error. The following address(es) failed:\r\n"
        "\r\n"
        f"  {recipient}\r\n"
        "    Mailbox quota exceeded: mailbox is full\r\n"
    ).encode()


def qq_bounce(recipient: str, *, to: str = "bounces@bounce.example.com") -> bytes:
    """QQ Mail's "系统退信" (system bounce) in GB18030, with a base64 body."""
    import base64

    text = f"抱歉，您的邮件被退回。\r\n收件人：{recipient}\r\n原因：收件人不存在 (550 Mailbox not found)\r\n"
    body = base64.encodebytes(text.encode("gb18030")).decode().replace("\n", "\r\n")
    return (
        "From: =?gb18030?B?z7XNs83L0MU=?= <MAILER-DAEMON@qq.com>\r\n"
        f"To: {to}\r\n"
        "Subject: =?UTF-8?B?57O757uf6YCA5L+h?=\r\n"
        "Message-ID: <qq-1@qq.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=gb18030\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n" + body
    ).encode()


def netease_bounce(
    recipient: str, *, sender: str = "news@example.com", to: str = "bounces@bounce.example.com"
) -> bytes:
    """A 163 / 126 "系统退信" in HTML only (base64): the original sender is listed before the recipient."""
    import base64

    html = (
        "<html><body><p>抱歉您的邮件被退回来了……</p><p>原邮件信息：<br>时　间：2026-11-30 10:00:00<br>"
        f"发件人：{sender}<br>收件人：{recipient}<br>主　题：Spring issue</p>"
        f"<p>退信原因：<br>对方邮箱地址不存在 550 User not found: {recipient}</p></body></html>"
    )
    body = base64.encodebytes(html.encode()).decode().replace("\n", "\r\n")
    return (
        "From: =?UTF-8?B?572R5piT6YKu5Lu2?= <Postmaster@163.com>\r\n"
        f"To: {to}\r\n"
        "Subject: =?UTF-8?B?57O757uf6YCA5L+h?=\r\n"
        "Message-ID: <163-1@163.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n" + body
    ).encode()


def exchange_ndr(recipient: str, *, to: str = "bounces@bounce.example.com") -> bytes:
    """An older Exchange "Undeliverable" non-delivery report in plain text (no RFC 3464 parts)."""
    return (
        "From: System Administrator <postmaster@corp.example.org>\r\n"
        f"To: {to}\r\n"
        "Subject: Undeliverable: Spring issue\r\n"
        "Message-ID: <ndr-1@corp.example.org>\r\n"
        "\r\n"
        "Your message did not reach some or all of the intended recipients.\r\n"
        "\r\n"
        "      From:     The Broadsheet <news@example.com>\r\n"
        "      Subject:  Spring issue\r\n"
        "      Sent:     11/30/2026 10:00 AM\r\n"
        "\r\n"
        "The following recipient(s) cannot be reached:\r\n"
        "\r\n"
        f"      {recipient} on 11/30/2026 10:00 AM\r\n"
        "            The e-mail account does not exist at the organization this message was sent to.\r\n"
        "            <mx.corp.example.org #5.1.1 smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound; not found>\r\n"
    ).encode()


def out_of_office(*, to: str = "bounces@bounce.example.com", rfc3834: bool = True) -> bytes:
    headers = "Auto-Submitted: auto-replied\r\n" if rfc3834 else ""
    return (
        "From: Reader <reader0@example.com>\r\n"
        f"To: {to}\r\n"
        "Subject: Automatic reply: Issue 1: Spring\r\n"
        "Message-ID: <ooo-1@example.com>\r\n" + headers + "\r\n"
        "I am out of the office until Monday.\r\n"
    ).encode()


def human_reply(*, to: str = "bounces@bounce.example.com") -> bytes:
    return (
        "From: Reader <reader0@example.com>\r\n"
        f"To: {to}\r\n"
        "Subject: Re: Issue 1: Spring\r\n"
        "Message-ID: <reply-1@example.com>\r\n"
        "\r\n"
        "Loved the piece about tulips.\r\n"
    ).encode()
