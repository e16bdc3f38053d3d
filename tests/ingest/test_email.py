"""Mail importers (.eml, .emlx, mbox, Maildir) on the real mail in shared/data/real/email, and bad input.

The real files are the point: odd charsets, raw 8-bit headers, broken multiparts, bounces, signed mail. Each
test names the file and the value a person would notice if it were wrong.
"""

from __future__ import annotations

import random
import shutil
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from aurora.app.ingest.email import (
    MAX_BODY_CHARS,
    html_to_text,
    message_to_record,
    parse_eml,
    parse_emlx,
    parse_maildir,
    parse_mbox,
)
from aurora.app.ingest.records import Parsed, ParseError, Record, Skipped

PARSERS: dict[str, Callable[[Path], Parsed]] = {".eml": parse_eml, ".emlx": parse_emlx, ".mbox": parse_mbox}
HADOOP = "mbox/tika_complex_hadoop-core-user_2009-06.mbox"


@pytest.fixture(scope="module")
def mail(real_data: Path) -> Path:
    return real_data / "email"


def records(items: Parsed) -> list[Record]:
    found = list(items)
    assert all(isinstance(i, Record) for i in found), [i for i in found if isinstance(i, Skipped)]
    return [i for i in found if isinstance(i, Record)]


def one(path: Path) -> Record:
    found = records(PARSERS[path.suffix](path))
    assert len(found) == 1
    return found[0]


def message(text: str) -> EmailMessage:
    return BytesParser(_class=EmailMessage, policy=default).parsebytes(text.encode())


# --- every real file ---------------------------------------------------------------------------------------


def test_every_real_mail_file_imports_or_is_skipped_with_a_reason(mail: Path) -> None:
    files = sorted(p for p in mail.rglob("*") if p.suffix in PARSERS)
    assert len(files) == 61, "the real mail set changed; update the counts below"
    per_folder: Counter[str] = Counter()
    skipped: list[Skipped] = []
    for path in files:
        items = list(PARSERS[path.suffix](path))  # any exception fails the test, naming the file
        assert items, f"{path}: nothing came out"
        for item in items:
            if isinstance(item, Skipped):
                assert item.reason.strip(), f"{path}: a Skipped without a reason"
                skipped.append(item)
                continue
            per_folder[path.parent.name] += 1
            assert item.kind == "mail"
            assert item.source == path.suffix.lstrip(".")
            assert item.external_id and item.thread_id and item.title
            assert item.occurred_at is None or item.occurred_at.tzinfo is not None
            assert len(item.body) <= MAX_BODY_CHARS
            texts = [item.title, item.body, *item.extra["attachments"]]
            texts += [p.name for p in item.participants] + [p.email for p in item.participants]
            for text in texts:
                text.encode("utf-8")  # no lone surrogates left over from raw 8-bit bytes
                assert "\x00" not in text
            assert all(p.email == p.email.lower() for p in item.participants)
    # Today every real message imports; a Skipped here would be a regression worth reading.
    assert skipped == []
    assert per_folder == {"cpython": 14, "flanker": 21, "mail-parser": 14, "tika": 10, "mbox": 4}


# --- charsets and headers ----------------------------------------------------------------------------------


def test_encoded_latin1_subject_decodes_to_accented_text(mail: Path) -> None:
    record = one(mail / "mail-parser/mail_test_5.eml")
    assert record.title == "Je prépare mon été zéro complexe !"
    assert "n'hésitez pas à contacter" in record.body  # a UTF-8 HTML body behind a plain part


def test_gb2312_subject_and_sender_decode_to_chinese(mail: Path) -> None:
    record = one(mail / "mail-parser/mail_test_12.eml")
    assert record.title == "代开各地增值税发票"
    assert record.participants[0].name == "张先生"
    assert record.body.startswith("你好！我公司可代开各类增值税发票")  # noqa: RUF001
    # The raw UTF-8 "ü" in the To header (no encoded word) is read as UTF-8, not as mojibake.
    assert [p.email for p in record.participants if p.role == "to"] == ["danglüe@email.com"]


def test_gb2312_label_with_gbk_characters_decodes_without_replacement_marks(mail: Path) -> None:
    # The sender labelled the subject GB2312 but used characters only in its superset GB18030.
    record = one(mail / "mail-parser/mail_test_9.eml")
    assert "\ufffd" not in record.title
    assert record.title.startswith("我把镜头拉近些，你们看看这个是什么")  # noqa: RUF001


def test_encoded_words_in_two_charsets_join_into_one_subject(mail: Path) -> None:
    record = one(mail / "tika/testRFC822_i18nheaders.eml")
    assert record.title == "If you can read this you understand the example."
    assert record.participants[0].name == "Keld Jørn Simonsen"


def test_raw_8bit_headers_decode_as_utf8_or_latin1(mail: Path) -> None:
    assert one(mail / "tika/testRFC822-ARC.eml").title.startswith("Facture à regler pour le cabinet")
    sender = one(mail / "flanker/from-encoding.eml").participants[0]
    assert (sender.name, sender.email) == ("Ingo Lütkebohle", "ingo@blank.pages.de")


def test_cyrillic_subject_and_body(mail: Path) -> None:
    record = one(mail / "flanker/bilingual-simple.eml")
    assert record.title == "Simple text. How are you? Как ты поживаешь?"
    assert "А эта линия по-русски." in record.body  # noqa: RUF001


# --- participants ------------------------------------------------------------------------------------------


def test_encoded_display_name_with_a_comma_stays_one_person(mail: Path) -> None:
    people = [(p.role, p.name, p.email) for p in one(mail / "mail-parser/mail_test_18.eml").participants]
    assert people == [
        ("from", "LastßlName, FirstName", "comma.name@example.com"),
        ("to", "tony.stark@example.com", "tony.stark@example.com"),
        ("cc", "", "simple@example.net"),
        ("cc", 'John "Johnny" Doe', "john.doe@example.com"),
    ]


def test_address_used_as_display_name_keeps_the_real_address(mail: Path) -> None:
    # "From: alice@example.com <bob@example.com>": mail clients send to (and show) bob.
    people = [(p.role, p.name, p.email) for p in one(mail / "mail-parser/mail_test_19.eml").participants]
    assert ("from", "alice@example.com", "bob@example.com") in people
    assert ("cc", "eve@example.com", "frank@example.com") in people
    assert ("to", "Charlie Brown", "charlie@example.com") in people


def test_old_style_comment_name_and_lowercased_addresses(mail: Path) -> None:
    sender = one(mail / "cpython/msg_06.eml").participants[0]
    assert (sender.role, sender.name, sender.email) == ("from", "Barry A. Warsaw", "barry@python.org")
    record = one(mail / "tika/testRFC822-CC-BCC.eml")
    bcc = [p.email for p in record.participants if p.role == "bcc"]
    assert len(bcc) == 7 and "sally.beck@enron.com" in bcc
    assert len([p for p in record.participants if p.role == "to"]) == 10
    assert (
        one(mail / "tika/testRFC822_multipart_attachments.eml").participants[0].email == "bugs.bunny@acme.com"
    )


def test_sender_without_an_address_keeps_its_name(mail: Path) -> None:
    (sender,) = one(mail / "tika/testRFC822_oddfrom.eml").participants
    assert (sender.name, sender.email) == ("Saved by Windows Internet Explorer 7", "")
    groupwise = one(mail / "tika/testGroupWiseEml.eml").participants
    assert [(p.name, p.email) for p in groupwise] == [("Novell GroupWise", "")]


# --- bodies ------------------------------------------------------------------------------------------------


def test_html_only_message_becomes_text_without_tags(mail: Path) -> None:
    lotus = one(mail / "tika/testLotusEml.eml")
    assert lotus.body == "Message body"
    page = one(mail / "tika/testRFC822_oddfrom.eml").body
    assert "Air Quality Planning & Standards" in page  # &amp; decoded
    assert "<" not in page.replace("<http", "") and "&amp;" not in page
    assert "font-family" not in page and "epa-core.js" not in page  # no CSS, no scripts
    spam = one(mail / "mail-parser/mail_test_9.eml").body
    assert "<" not in spam and "这种场合自然少不了内射" in spam


def test_plain_text_is_preferred_over_html(mail: Path) -> None:
    record = one(mail / "tika/testRFC822-mixed-simple.eml")
    assert record.body.startswith("This is an email that will have some rich text and an attachment.")
    assert "body 1" in record.body and "body 2" not in record.body  # "body 2" is only in the HTML


def test_attachments_are_listed_not_imported(mail: Path) -> None:
    record = one(mail / "tika/testRFC822_multipart_attachments.eml")
    assert record.extra["attachments"] == ["Test TxtA.txt", "Test TxtB.txt"]
    assert record.body == "Hi,\n\nThis is test email for EML1\n\nThanks,\nChetan"
    assert one(mail / "cpython/msg_07.eml").extra["attachments"] == ["dingusfish.gif"]
    assert one(mail / "mail-parser/mail_test_10.eml").extra["attachments"] == ["Move To Eight ZWEP6227F.pdf"]
    mixed = one(mail / "tika/testRFC822-mixed-simple.eml").extra["attachments"]
    assert mixed == ["Mary with cooler.jpeg", "mary-coffee.jpg"]


def test_signed_mail_shows_the_signed_text_and_no_signature_file(mail: Path) -> None:
    record = one(mail / "cpython/msg_45.eml")
    assert record.body == "This is the signed contents."
    assert record.extra["attachments"] == []


def test_forwarded_message_is_shown_inline(mail: Path) -> None:
    body = one(mail / "cpython/msg_46.eml").body
    assert 'From: "Dr. Sender" <sender@example.net>' in body
    assert body.endswith("Testing email forwarding with Groupwise 1.2.2010")


def test_multipart_with_a_wrong_boundary_is_still_read(mail: Path) -> None:
    # The declared boundary is not the one the parts use; without recovery the body is raw base64.
    body = one(mail / "mail-parser/mail_malformed_3.eml").body
    assert "Content-Transfer-Encoding" not in body and "PGh0bWw" not in body
    assert "Calefactor Ultradelgado de Porcelanato" in body


def test_bounces_are_flagged(mail: Path) -> None:
    bounces = [
        "cpython/msg_16.eml",
        "cpython/msg_25.eml",
        "cpython/msg_43.eml",
        "flanker/bounce_delayed.eml",
        "flanker/bounce_gmail-invalid-address.eml",  # plain text: known by its headers
        "flanker/bounce_mailbox-full.eml",
        "flanker/bounce_office365.eml",
        "mail-parser/mail_malformed_2.eml",
    ]
    for name in bounces:
        assert one(mail / name).extra["is_bounce"] is True, name
    for name in ["flanker/complaints_aol.eml", "flanker/disposition-notification.eml", "cpython/msg_07.eml"]:
        assert one(mail / name).extra["is_bounce"] is False, name
    assert "recipient reached disk quota" in one(mail / "cpython/msg_16.eml").body


# --- ids, dates, threads -----------------------------------------------------------------------------------


def test_message_id_is_normalised_and_missing_ids_hash_stably(mail: Path) -> None:
    lotus = one(mail / "tika/testLotusEml.eml")
    assert lotus.external_id == "OF62AEA923.7CEE804A-ONC1257A8D.003C970D-C1257A8D.003CAB24@localdomain"
    assert lotus.extra["message_id"] == lotus.external_id
    first, again = one(mail / "cpython/msg_07.eml"), one(mail / "cpython/msg_07.eml")
    assert first.extra["message_id"] is None
    assert first.external_id.startswith("sha256:") and len(first.external_id) == len("sha256:") + 64
    assert first.external_id == again.external_id


def test_dates_are_timezone_aware(mail: Path) -> None:
    thunderbird = one(mail / "tika/testThunderbirdEml.eml").occurred_at
    assert thunderbird == datetime(2012, 11, 21, 20, 11, 32, tzinfo=UTC)
    assert thunderbird is not None and thunderbird.utcoffset() is not None
    # "-0000" means "zone unknown": read as UTC.
    receipt = one(mail / "flanker/disposition-notification.eml").occurred_at
    assert receipt == datetime(1995, 9, 20, 0, 19, tzinfo=UTC)
    assert one(mail / "cpython/msg_45.eml").occurred_at is None  # no Date header; the mail is still kept


def test_mbox_yields_each_message_and_replies_share_a_thread(mail: Path) -> None:
    first, second, third = records(parse_mbox(mail / HADOOP))
    assert [r.participants[0].name for r in (first, second, third)] == [
        "Jothi Padmanabhan",
        "Jianmin Woo",
        "Jothi Padmanabhan",
    ]
    assert second.extra["in_reply_to"] == first.external_id == "C649564F.1435F%jothipn@yahoo-inc.com"
    assert third.extra["in_reply_to"] == second.external_id
    # The whole conversation is one thread, rooted at the question that is not in this extract.
    assert (
        first.thread_id
        == second.thread_id
        == third.thread_id
        == "440622.41041.qm@web111005.mail.gq1.yahoo.com"
    )
    assert {r.extra["list_id"] for r in (first, second, third)} == {"core-user.hadoop.apache.org"}
    assert [r.source for r in (first, second, third)] == ["mbox"] * 3
    assert len(records(parse_mbox(mail / "mbox/tika_testMBOX_complex.mbox"))) == 1


def test_one_message_alone_threads_by_its_headers(mail: Path) -> None:
    # Without the mailbox around it, a reply threads under the first id in References (here: its parent).
    raw = (mail / HADOOP).read_bytes()
    start = raw.index(b"\nFrom core-user-return-14701") + 1
    end = raw.index(b"\nFrom core-user-return-14702")
    msg = BytesParser(_class=EmailMessage, policy=default).parsebytes(raw[start:end])
    record = message_to_record(msg, "mbox", "test")
    assert isinstance(record, Record)
    assert record.thread_id == "C649564F.1435F%jothipn@yahoo-inc.com"
    assert record.extra["references"] == ["C649564F.1435F%jothipn@yahoo-inc.com"]


def test_emlx_reads_the_message_and_not_the_plist(mail: Path) -> None:
    record = one(mail / "tika/testEMLX.emlx")
    assert record.source == "emlx"
    assert record.title == "[jira] Commented: (TIKA-461) RFC822 messages not parsed"
    assert record.participants[0].name == "Julien Nioche (JIRA)"
    assert "I'll have a look at mime4j and try to use it in Tika" in record.body
    assert "plist" not in record.body
    assert record.thread_id == "6089099.260231278600349994.JavaMail.jira@thor"


# --- Maildir -----------------------------------------------------------------------------------------------


def test_maildir_reads_new_cur_and_subfolders_but_not_tmp(tmp_path: Path, mail: Path) -> None:
    box = tmp_path / "Maildir"
    for folder in (box, box / ".Sent"):
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True)
    shutil.copy(mail / "cpython/msg_07.eml", box / "new/1700000001.M1P1.host")
    shutil.copy(mail / "tika/testThunderbirdEml.eml", box / "cur/1700000002.M2P2.host:2,S")
    shutil.copy(mail / "flanker/bounce_delayed.eml", box / ".Sent/cur/1700000003.M3P3.host:2,S")
    (box / "tmp/1700000004.M4P4.host").write_bytes(b"From: half@delivered.example\n")  # still being written
    (box / "cur/.hidden").write_text("not a message")
    found = records(parse_maildir(box))
    assert [r.title for r in found] == [
        "Here is your dingus fish",
        "JUnit test message",
        "Returned mail: Cannot send message for 5 days",
    ]
    assert {r.source for r in found} == {"maildir"}


def test_maildir_threads_replies_across_files(tmp_path: Path) -> None:
    box = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "cur/1.host").write_text(
        "From: a@x.org\nMessage-ID: <root@x.org>\nIn-Reply-To: <gone@x.org>\n\nhi\n"
    )
    (box / "cur/2.host").write_text(
        "From: b@x.org\nMessage-ID: <reply@x.org>\nReferences: <root@x.org>\n\nho\n"
    )
    first, second = records(parse_maildir(box))
    assert first.thread_id == second.thread_id == "gone@x.org"


# --- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("parse", [parse_eml, parse_emlx, parse_mbox])
def test_empty_file_is_refused_with_a_reason(tmp_path: Path, parse: Callable[[Path], Parsed]) -> None:
    empty = tmp_path / "empty.mail"
    empty.write_bytes(b"")
    with pytest.raises(ParseError, match="empty"):
        list(parse(empty))


@pytest.mark.parametrize("parse", [parse_eml, parse_emlx, parse_mbox])
def test_random_bytes_are_refused_with_a_reason(tmp_path: Path, parse: Callable[[Path], Parsed]) -> None:
    noise = tmp_path / "noise.bin"
    noise.write_bytes(random.Random(7).randbytes(8192))
    with pytest.raises(ParseError, match=r"not an? (e-mail message|Apple Mail|mbox)"):
        list(parse(noise))


@pytest.mark.parametrize("parse", [parse_eml, parse_emlx, parse_mbox])
def test_a_folder_given_to_a_file_parser_is_refused(tmp_path: Path, parse: Callable[[Path], Parsed]) -> None:
    with pytest.raises(ParseError, match="folder"):
        list(parse(tmp_path))


def test_a_file_or_plain_folder_is_not_a_maildir(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="no cur/ or new/"):
        list(parse_maildir(tmp_path))
    file = tmp_path / "x.eml"
    file.write_text("From: a@b.org\n\nhi\n")
    with pytest.raises(ParseError, match="not a folder"):
        list(parse_maildir(file))


def test_truncated_eml_still_imports_what_is_there(tmp_path: Path, mail: Path) -> None:
    data = (mail / "cpython/msg_07.eml").read_bytes()
    cut_in_attachment = tmp_path / "cut.eml"
    cut_in_attachment.write_bytes(data[: len(data) // 2])
    record = one(cut_in_attachment)
    assert record.title == "Here is your dingus fish"
    assert record.body == "Hi there,\n\nThis is the dingus fish."
    cut_in_headers = tmp_path / "headers.eml"
    cut_in_headers.write_bytes(data[: data.index(b"Date:") + 9])
    record = one(cut_in_headers)
    assert record.title == "Here is your dingus fish" and record.occurred_at is None


def test_truncated_emlx_imports_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "1.emlx"
    path.write_bytes(b"500\nFrom: a@b.org\nSubject: short\n\nonly this\n")
    skipped, record = list(parse_emlx(path))
    assert isinstance(skipped, Skipped) and "cut short" in skipped.reason
    assert isinstance(record, Record) and record.title == "short" and record.body == "only this"


def test_a_garbage_message_inside_an_mbox_is_skipped_and_the_rest_imported(tmp_path: Path) -> None:
    path = tmp_path / "box.mbox"
    path.write_bytes(
        b"From a@b Mon Jan  1 00:00:00 2024\nthis line is no header\x00\x01\x02\n\n"
        b"From a@b Mon Jan  1 00:00:00 2024\nFrom: a@b.org\nSubject: fine\n\nbody\n"
    )
    skipped, record = list(parse_mbox(path))
    assert isinstance(skipped, Skipped) and "message 1" in skipped.where
    assert "not an e-mail message" in skipped.reason
    assert isinstance(record, Record) and record.title == "fine"


def test_a_message_the_parser_chokes_on_becomes_a_skipped() -> None:
    class Broken(EmailMessage):
        broken = False

        def raw_items(self) -> Iterator[tuple[str, Any]]:
            if self.broken:  # the way CPython's header parser fails on some malformed headers
                raise IndexError("list index out of range")
            return super().raw_items()

    msg = BytesParser(_class=Broken, policy=default).parsebytes(b"From: a@b.org\nSubject: x\n\nbody\n")
    assert isinstance(msg, Broken)
    msg.broken = True
    result = message_to_record(msg, "eml", "inbox/7.eml")
    assert isinstance(result, Skipped)
    assert result.where == "inbox/7.eml" and "IndexError" in result.reason


def test_long_body_is_capped_and_marked() -> None:
    result = message_to_record(message("From: a@b.org\nSubject: log\n\n" + "x" * 300_000), "eml", "t")
    assert isinstance(result, Record)
    assert len(result.body) == MAX_BODY_CHARS and result.extra["truncated"] is True
    assert "truncated" not in message_to_record(message("From: a@b.org\n\nshort\n"), "eml", "t").extra  # type: ignore[union-attr]


def test_missing_subject_and_unparseable_date() -> None:
    result = message_to_record(message("From: a@b.org\nDate: the day after tomorrow\n\nhi\n"), "eml", "t")
    assert isinstance(result, Record)
    assert result.title == "(no subject)" and result.occurred_at is None and result.body == "hi"


def test_html_to_text() -> None:
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        "<p>Fish &amp; chips&nbsp;at   <b>noon</b></p><script>alert(1)</script>"
        "<ul><li>one</li><li>two</li></ul>line<br>break</body></html>"
    )
    assert html_to_text(html) == "Fish & chips at noon\n\n- one\n- two\n\nline\nbreak"


def test_mutated_real_mail_never_raises(tmp_path: Path, mail: Path) -> None:
    """Real files cut short, or with MIME punctuation and stray bytes inserted: a Record or a Skipped (or the
    ParseError that says the file is not mail at all), never another exception, never unstorable text."""
    rng = random.Random(2024)
    files = sorted(p for p in mail.rglob("*") if p.suffix in PARSERS)
    junk = b'\n|=?|?=|<|"|--|=?utf-8?B?|=?x-unknown?Q?=FF|\x00|\xff\xfe|;'.split(b"|")
    for _ in range(150):
        source = rng.choice(files)
        data = bytearray(source.read_bytes())
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data) + 1)]
        else:
            for _ in range(rng.randrange(1, 40)):
                position = rng.randrange(len(data) + 1)
                data[position:position] = rng.choice(junk)
        path = tmp_path / f"mutated{source.suffix}"
        path.write_bytes(bytes(data))
        try:
            items = list(PARSERS[source.suffix](path))
        except ParseError as exc:
            assert str(exc)
            continue
        assert items, source
        for item in items:
            if isinstance(item, Skipped):
                assert item.reason
                continue
            for text in [
                item.title,
                item.body,
                *item.extra["attachments"],
                *(p.name for p in item.participants),
            ]:
                text.encode("utf-8")


def test_a_5mb_mbox_streams(tmp_path: Path) -> None:
    path = tmp_path / "big.mbox"
    paragraph = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 2 + "\n") * 85
    with path.open("w") as f:
        for i in range(520):
            reply = f"In-Reply-To: <m{i - 1}@example.com>\n" if i else ""
            f.write(
                f"From sender{i}@example.com Mon Jan  1 00:00:00 2024\nFrom: Sender {i} <s{i}@example.com>\n"
                f"Subject: Message {i}\nMessage-ID: <m{i}@example.com>\n{reply}\n{paragraph}\n"
            )
    assert path.stat().st_size > 5_000_000
    started = time.monotonic()
    tracemalloc.start()
    try:
        count, threads = 0, set()
        for item in parse_mbox(path):
            assert isinstance(item, Record)
            count += 1
            threads.add(item.thread_id)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 520
    assert threads == {"m0@example.com"}  # a 520-message reply chain is one thread
    assert peak < 5_000_000, f"peak {peak} bytes: the mbox was held in memory"
    assert time.monotonic() - started < 8
