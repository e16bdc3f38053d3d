"""Contacts: vCard 2.1/3.0/4.0 and Google/Outlook CSV exports.

The shared real data holds no address book with a permissive licence, so the fixtures are written here in
the formats as the exporters write them: Apple Contacts and Google vCard 3.0 (folded lines, item groups),
vCard 4.0 (RFC 6350: quoted TYPE lists, tel: URIs, urn:uuid UIDs), an Android vCard 2.1 (quoted-printable
UTF-8 with soft line breaks), Google Contacts CSV (old "Google CSV" and the 2023 layout) and Outlook's CSV.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aurora.app.ingest.contacts import parse_contacts_csv, parse_vcard
from aurora.app.ingest.records import Parsed, ParseError, Participant, Record, Skipped


def _split(items: Parsed) -> tuple[list[Record], list[Skipped]]:
    out = list(items)
    return [i for i in out if isinstance(i, Record)], [i for i in out if isinstance(i, Skipped)]


def _file(tmp_path: Path, name: str, text: str, encoding: str = "utf-8", crlf: bool = True) -> Path:
    path = tmp_path / name
    path.write_bytes((text.replace("\n", "\r\n") if crlf else text).encode(encoding))
    return path


APPLE_V3 = """BEGIN:VCARD
VERSION:3.0
PRODID:-//Apple Inc.//macOS 14.4//EN
N:Scully;Dana;Katherine;Dr.;
FN:Dr. Dana Katherine Scully
ORG:Federal Bureau of Investigation;X-Files
TITLE:Special Agent
EMAIL;type=INTERNET;type=WORK;type=pref:Dana.Scully@fbi.example.gov
EMAIL;type=INTERNET;type=HOME:dana@home.example
TEL;type=CELL;type=VOICE;type=pref:+1 (202) 555-0143
item1.TEL:+1 202 555 0100
item1.X-ABLabel:_$!<Other>!$_
item2.ADR;type=WORK;type=pref:;;935 Pennsylvania Avenue NW;Washington;DC;20535;United States
NOTE:Prefers e-mail before 9am.\\nAsk about the Bellefleur case\\, and the budget
 \\; call back on Monday.
BDAY;value=date:1964-02-23
UID:8D2A1E6C-1F2B-4C3D-9E8F-0123456789AB
PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsN
 DhIQDQ4RDgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQU
END:VCARD
BEGIN:VCARD
VERSION:4.0
UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1
FN:Fox William Mul
 der
N:Mulder;Fox;William;;
EMAIL;TYPE=work;PREF=1:fox.mulder@fbi.example.gov
TEL;VALUE=uri;TYPE="voice,cell";PREF=1:tel:+1-202-555-0199
TEL;VALUE=uri;TYPE=work:tel:+1-202-555-0100;ext=42
ORG:FBI
END:VCARD
"""


def test_vcard_3_and_4_with_folded_lines(tmp_path: Path) -> None:
    records, skipped = _split(parse_vcard(_file(tmp_path, "contacts.vcf", APPLE_V3)))
    assert skipped == []
    dana, fox = records
    assert dana.kind == "contact" and dana.source == "vcard"
    assert dana.external_id == "8D2A1E6C-1F2B-4C3D-9E8F-0123456789AB"
    assert dana.title == "Dr. Dana Katherine Scully"
    assert dana.extra == {
        "emails": ["Dana.Scully@fbi.example.gov", "dana@home.example"],
        "phones": ["+1 (202) 555-0143", "+1 202 555 0100"],
        "org": "Federal Bureau of Investigation",
        "job_title": "Special Agent",
    }
    assert dana.participants == (
        Participant(name="Dr. Dana Katherine Scully", email="Dana.Scully@fbi.example.gov", role="contact"),
        Participant(name="Dr. Dana Katherine Scully", email="dana@home.example", role="contact"),
    )
    assert dana.body.splitlines() == [
        "Special Agent, Federal Bureau of Investigation (X-Files)",
        "Email: Dana.Scully@fbi.example.gov, dana@home.example",
        "Phone: +1 (202) 555-0143 (mobile), +1 202 555 0100",
        "Address: 935 Pennsylvania Avenue NW, Washington, DC, 20535, United States",
        "Birthday: 1964-02-23",
        "",
        "Prefers e-mail before 9am.",
        "Ask about the Bellefleur case, and the budget; call back on Monday.",
    ]
    assert "/9j/" not in dana.body  # the photo stays out
    assert fox.external_id == "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1"
    assert fox.title == "Fox William Mulder"  # folded mid-word
    assert fox.extra["phones"] == ["+1-202-555-0199", "+1-202-555-0100;ext=42"]
    assert "+1-202-555-0199 (mobile)" in fox.body and "+1-202-555-0100;ext=42 (work)" in fox.body


ANDROID_V21 = """BEGIN:VCARD
VERSION:2.1
N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=B6rg;;;
FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:J=C3=B6rg M=C3=BC=
ller
TEL;CELL;PREF:+49 170 1234567
TEL;HOME:030 123456
EMAIL;HOME:Joerg.Mueller@Example.de
NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:Gr=C3=BC=C3=9Fe an die Familie=0D=0A=
Stra=C3=9Fe 1
END:VCARD
BEGIN:VCARD
VERSION:2.1
N:;;;;
TEL;CELL:+44 7700 900123
END:VCARD
BEGIN:VCARD
VERSION:2.1
N:;;;;
END:VCARD
"""


def test_vcard_21_quoted_printable_and_bare_types(tmp_path: Path) -> None:
    records, skipped = _split(parse_vcard(_file(tmp_path, "00001.vcf", ANDROID_V21)))
    joerg, phone_only = records
    assert joerg.title == "Jörg Müller"
    assert joerg.external_id == "joerg.mueller@example.de"  # no UID: the first e-mail, lower case
    assert joerg.extra["phones"] == ["+49 170 1234567", "030 123456"]
    assert "+49 170 1234567 (mobile), 030 123456 (home)" in joerg.body
    assert joerg.body.endswith("Grüße an die Familie\nStraße 1")
    assert phone_only.title == "+44 7700 900123"
    assert phone_only.external_id == "sha256:" + hashlib.sha256(b"+44 7700 900123").hexdigest()
    assert phone_only.participants == (Participant(name="+44 7700 900123", role="contact"),)
    assert [s.reason for s in skipped] == ["the card has no name, e-mail, phone or organisation"]
    assert "card at line 17" in skipped[0].where


def test_a_name_only_card_is_keyed_by_the_hash_of_its_name(tmp_path: Path) -> None:
    path = _file(tmp_path, "one.vcf", "BEGIN:VCARD\nVERSION:3.0\nFN:Walter  Skinner\nEND:VCARD\n", crlf=False)
    (record,), _ = _split(parse_vcard(path))
    assert record.external_id == "sha256:" + hashlib.sha256(b"walter skinner").hexdigest()
    assert record.title == "Walter Skinner"  # spacing tidied, the id from the tidied name
    assert record.participants == (Participant(name="Walter Skinner", role="contact"),)


def test_a_bad_line_costs_that_line_and_a_cut_card_is_skipped(tmp_path: Path) -> None:
    text = (
        "BEGIN:VCARD\nVERSION:3.0\nFN:Kim Lee\nthis line is garbage\nEMAIL:kim@example.com\nEND:VCARD\n"
        "BEGIN:VCARD\nVERSION:3.0\nFN:Cut Short\nEMAIL:cut@exa"
    )
    records, skipped = _split(parse_vcard(_file(tmp_path, "cut.vcf", text)))
    assert [r.title for r in records] == ["Kim Lee"] and records[0].extra["emails"] == ["kim@example.com"]
    assert len(skipped) == 1
    assert skipped[0].reason == "the card for Cut Short has no END:VCARD: the file is cut short"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
        (b"Name,Email\nDana,dana@example.org\n", "no vCard"),
    ],
)
def test_vcard_files_that_are_not_vcards(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "x.vcf"
    path.write_bytes(content)
    with pytest.raises(ParseError, match=reason):
        list(parse_vcard(path))


def test_utf16_vcard_from_windows(tmp_path: Path) -> None:
    path = _file(
        tmp_path, "w.vcf", "BEGIN:VCARD\nVERSION:3.0\nFN:Zoë Ångström\nEND:VCARD\n", encoding="utf-16"
    )
    (record,), _ = _split(parse_vcard(path))
    assert record.title == "Zoë Ångström"


def test_a_vcard_cut_anywhere_never_raises_anything_but_parse_error(tmp_path: Path) -> None:
    text = APPLE_V3 + ANDROID_V21
    for size in range(0, len(text), 11):
        path = _file(tmp_path, "cut.vcf", text[:size])
        try:
            items = list(parse_vcard(path))
        except ParseError:
            continue
        assert all(isinstance(i, Record | Skipped) for i in items)


# CSV ------------------------------------------------------------------------------------------------------

GOOGLE_OLD = (
    "Name,Given Name,Additional Name,Family Name,Yomi Name,Given Name Yomi,Additional Name Yomi,"
    "Family Name Yomi,Name Prefix,Name Suffix,Initials,Nickname,Short Name,Maiden Name,Birthday,Gender,"
    "Location,Billing Information,Directory Server,Mileage,Occupation,Hobby,Sensitivity,Priority,Subject,"
    "Notes,Language,Photo,Group Membership,E-mail 1 - Type,E-mail 1 - Value,E-mail 2 - Type,E-mail 2 - Value,"
    "Phone 1 - Type,Phone 1 - Value,Phone 2 - Type,Phone 2 - Value,"
    "Organization 1 - Type,Organization 1 - Name,"
    "Organization 1 - Yomi Name,Organization 1 - Title,Organization 1 - Department,Organization 1 - Symbol,"
    "Organization 1 - Location,Organization 1 - Job Description\n"
    'Dana Scully,Dana,,Scully,,,,,,,,,,,1964-02-23,,,,,,,,,,,"Met at Quantico.\nLikes coffee.",,,'
    "* myContacts,* Work,dana@fbi.example.gov ::: d.scully@example.org,Home,dana@home.example,"
    "Mobile,+1 202-555-0143,Work,+1 202-555-0100,,FBI,,Special Agent,X-Files,,,\n"
    ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\n"
    ",,,,,,,,,,,,,,,,,,,,,,,,,,,,* myContacts,,,,,,,,,,,,,,,,\n"
)

GOOGLE_2023 = (
    "First Name,Middle Name,Last Name,Phonetic First Name,Phonetic Middle Name,Phonetic Last Name,"
    "Name Prefix,Name Suffix,Nickname,File As,Organization Name,Organization Title,Organization Department,"
    "Birthday,Notes,"
    "Photo,Labels,E-mail 1 - Label,E-mail 1 - Value,Phone 1 - Label,Phone 1 - Value\n"
    "Fox,William,Mulder,,,,,,Spooky,,FBI,Special Agent,,,,,* myContacts,* Work,Fox.Mulder@FBI.example.gov,"
    "Mobile,+1 202-555-0199\n"
)

OUTLOOK = (
    "First Name,Middle Name,Last Name,Title,Suffix,Initials,Web Page,Gender,Birthday,Anniversary,Location,"
    "Language,Internet Free Busy,Notes,E-mail Address,E-mail 2 Address,E-mail 3 Address,Primary Phone,"
    "Home Phone,Home Phone 2,Mobile Phone,Pager,Home Fax,Home Address,Home Street,Home City,Home State,"
    "Home Postal Code,Home Country,Assistant's Phone,Business Phone,Business Fax,Company,Job Title,"
    "Department,"
    "Categories\n"
    "Walter,S.,Skinner,Mr.,,W.S.S.,,Male,0/0/00,0/0/00,,,,,walter.skinner@fbi.example.gov,,,,,,"
    "+1 202 555 0111,,+1 202 555 0112,,,,,,,+1 202 555 0113,+1 202 555 0114,,FBI,Assistant Director,"
    "Criminal Investigations,Work\n"
)


def test_google_csv_old_layout(tmp_path: Path) -> None:
    records, skipped = _split(parse_contacts_csv(_file(tmp_path, "google.csv", GOOGLE_OLD)))
    (dana,) = records
    assert dana.source == "csv-contacts" and dana.title == "Dana Scully"
    assert dana.external_id == "dana@fbi.example.gov"
    assert dana.extra == {
        "emails": ["dana@fbi.example.gov", "d.scully@example.org", "dana@home.example"],
        "phones": ["+1 202-555-0143", "+1 202-555-0100"],
        "org": "FBI",
        "job_title": "Special Agent",
    }
    assert "Phone: +1 202-555-0143 (mobile), +1 202-555-0100 (work)" in dana.body
    assert dana.body.startswith("Special Agent, FBI (X-Files)")
    assert dana.body.endswith("Met at Quantico.\nLikes coffee.")
    assert len(dana.participants) == 3 and {p.name for p in dana.participants} == {"Dana Scully"}
    # The all-empty row is passed over; the row with only a group label is reported.
    assert [s.reason for s in skipped] == ["the row has no name, e-mail, phone or organisation"]
    assert "row 4" in skipped[0].where


def test_google_csv_2023_layout(tmp_path: Path) -> None:
    (fox,), _ = _split(parse_contacts_csv(_file(tmp_path, "contacts.csv", GOOGLE_2023, encoding="utf-8-sig")))
    assert fox.title == "Fox William Mulder"
    assert fox.external_id == "fox.mulder@fbi.example.gov"
    assert fox.extra["phones"] == ["+1 202-555-0199"]  # "Phonetic ..." columns are no phones
    assert fox.extra["job_title"] == "Special Agent" and fox.extra["org"] == "FBI"


def test_outlook_csv_in_windows_1252_with_semicolons(tmp_path: Path) -> None:
    records, _ = _split(parse_contacts_csv(_file(tmp_path, "outlook.csv", OUTLOOK)))
    (walter,) = records
    assert walter.title == "Walter S. Skinner"
    assert walter.extra["job_title"] == "Assistant Director"  # not "Mr.", Outlook's Title column
    assert walter.extra["phones"] == ["+1 202 555 0111", "+1 202 555 0114"]  # no fax, no assistant
    assert "Phone: +1 202 555 0111 (mobile), +1 202 555 0114 (business)" in walter.body
    assert "Birthday" not in walter.body  # Outlook writes 0/0/00 for no date

    european = OUTLOOK.replace(",", ";").replace("Walter", "Renée")
    (renee,), _ = _split(parse_contacts_csv(_file(tmp_path, "de.csv", european, encoding="cp1252")))
    assert renee.title == "Renée S. Skinner"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\x00\x00\x01\x00" * 50, "binary data"),
        (b"Date,Amount,Payee\n2024-01-02,12.50,Cafe\n", "not a contacts export"),
    ],
)
def test_csv_files_that_are_not_contacts(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(ParseError, match=reason):
        list(parse_contacts_csv(path))


def test_a_csv_cut_anywhere_never_raises_anything_but_parse_error(tmp_path: Path) -> None:
    for text in (GOOGLE_OLD, OUTLOOK):
        for size in range(0, len(text), 13):
            path = _file(tmp_path, "cut.csv", text[:size])
            try:
                items = list(parse_contacts_csv(path))
            except ParseError:
                continue
            assert all(isinstance(i, Record | Skipped) for i in items)


def test_a_cut_off_csv_keeps_what_is_there(tmp_path: Path) -> None:
    text = 'Name,E-mail Address,Notes\nKim Lee,kim@example.com,ok\nCut Short,cut@example.com,"unterminated\n'
    records, skipped = _split(parse_contacts_csv(_file(tmp_path, "cut.csv", text, crlf=False)))
    assert [r.title for r in records] == ["Kim Lee", "Cut Short"] and skipped == []
    assert records[1].body.endswith("unterminated")


def test_an_unreadable_row_stops_the_csv_with_a_reason(tmp_path: Path) -> None:
    huge = "x" * 200_000  # past the csv module's field limit
    text = (
        f'Name,E-mail Address,Notes\nKim Lee,kim@example.com,ok\nBig,big@example.com,"{huge}"\n'
        "After,a@example.com,\n"
    )
    records, skipped = _split(parse_contacts_csv(_file(tmp_path, "big.csv", text, crlf=False)))
    assert [r.title for r in records] == ["Kim Lee"]
    assert len(skipped) == 1 and skipped[0].reason.startswith("the CSV cannot be read on from here")
    assert "line 3" in skipped[0].where
