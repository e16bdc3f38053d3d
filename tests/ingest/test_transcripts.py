"""Transcripts: the real WebVTT/SRT/SBV subtitles in shared data, and hand-made meeting transcripts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aurora.app.ingest.records import Parsed, ParseError, Participant, Record, Skipped
from aurora.app.ingest.transcripts import parse_srt, parse_transcript_text, parse_vtt

PARSERS: dict[str, Callable[[Path], Parsed]] = {
    ".vtt": parse_vtt,
    ".srt": parse_srt,
    ".sbv": parse_transcript_text,
    ".txt": parse_transcript_text,
}


def _one(items: Parsed) -> tuple[Record, list[Skipped]]:
    out = list(items)
    records = [i for i in out if isinstance(i, Record)]
    assert len(records) == 1, out
    return records[0], [i for i in out if isinstance(i, Skipped)]


@pytest.fixture(scope="module")
def subtitles(real_data: Path) -> Path:
    path = real_data / "transcripts" / "subtitles"
    if not path.is_dir():
        pytest.skip(f"no subtitles at {path}")
    return path


@pytest.fixture(scope="module")
def real(subtitles: Path) -> dict[str, Record]:
    found: dict[str, Record] = {}
    for file in sorted(subtitles.iterdir()):
        record, skipped = _one(PARSERS[file.suffix](file))
        assert skipped == [], file
        found[file.name] = record
    return found


def test_every_real_subtitle_file_is_one_transcript(real: dict[str, Record]) -> None:
    assert len(real) == 9
    for name, record in real.items():
        assert record.kind == "transcript"
        assert record.source == {".vtt": "vtt", ".srt": "srt"}.get(Path(name).suffix, "transcript")
        assert record.external_id.startswith("sha256:") and len(record.external_id) == 7 + 64
        assert record.occurred_at is None  # none of them says when
        assert record.extra["cues"] == len(record.body.splitlines()) or name.endswith("youtube_dl.vtt")
        assert "<" not in record.body and "-->" not in record.body
        for line in record.body.splitlines():
            assert line.startswith("[") and line[9:11] == "] ", line
    assert len({r.external_id for r in real.values()}) == 9


def test_srt_cue_times_and_accents(real: dict[str, Record]) -> None:
    srt = real["tika_test_subrip.srt"]
    lines = srt.body.splitlines()
    assert lines[0] == "[00:01:14] ESSAI DE SOUS-TITRES"
    assert lines[1] == '[00:01:15] "Pour tester la reconnaissance, il faut des lignes de textes."'
    assert lines[2] == "[00:01:19] On peut écrire avec des accents,"
    assert lines[7] == "[00:01:39] PREMIÈRE PARTIE : VIE DE TOTO"  # French " :" is not a speaker label
    assert srt.extra == {"speakers": [], "duration_s": 31.28, "cues": 10}
    assert srt.title == "tika test subrip" and srt.participants == ()


def test_vtt_tags_settings_identifiers_bom_and_headers(real: dict[str, Record]) -> None:
    tika = real["tika_testWebVTT.vtt"].body.splitlines()
    assert tika[0] == "[00:00:03] Everyone wants the most from life"  # "D:vertical A:start" settings ignored
    assert tika[1] == "[00:00:06] Like internet experiences that are rich and entertaining"  # <b> stripped
    assert tika[-1] == "[00:00:28] Simply for everyone"
    assert real["tika_testWebVTT_header.vtt"].body == "[00:01:14] - What? - Where are we now?"
    bom = real["webvtt-py_captions_with_bom.vtt"]
    assert bom.body.splitlines()[0] == "[00:00:00] Caption text #1" and bom.extra["cues"] == 4
    assert real["tika_testWebVTT_utf8.vtt"].body.startswith("[00:00:00] Well, the feedback indicates")
    identifiers = real["webvtt-py_using_identifiers.vtt"].body
    assert "second caption" not in identifiers and len(identifiers.splitlines()) == 6
    assert identifiers.splitlines()[3] == "[00:00:16] Caption text #4"  # its "4" identifier is not text
    headers = real["webvtt-py_metadata_headers_multiline.vtt"]
    assert headers.body == "[00:00:00] Caption text #1\n[00:00:07] Caption text #2"  # Style: block dropped
    assert headers.extra["duration_s"] == pytest.approx(11.39)


def test_youtube_rolling_captions_are_not_repeated(real: dict[str, Record]) -> None:
    youtube = real["webvtt-py_youtube_dl.vtt"]
    assert youtube.body.splitlines() == [
        "[00:04:46] yeah",
        "[00:04:46] what",
        "[00:05:04] this will happen is I'm telling",  # karaoke timestamps stripped, the repeat merged
    ]
    assert youtube.extra["cues"] == 4 and youtube.extra["duration_s"] == pytest.approx(19.33)


def test_sbv_reads_as_a_plain_transcript(real: dict[str, Record]) -> None:
    sbv = real["webvtt-py_sample.sbv"]
    assert sbv.body.splitlines()[2] == "[00:00:13] Caption text #3 (line 1) Caption text #3 (line 2)"
    assert sbv.extra["cues"] == 5  # its last cue ends before it starts; still kept


def test_renaming_or_resaving_does_not_change_the_id(
    subtitles: Path, real: dict[str, Record], tmp_path: Path
) -> None:
    original = subtitles / "tika_testWebVTT.vtt"
    copy = tmp_path / "Renamed copy.vtt"
    copy.write_bytes(b"\xef\xbb\xbf" + original.read_bytes().replace(b"\n", b"\r\n"))
    record, _ = _one(parse_vtt(copy))
    assert record.external_id == real["tika_testWebVTT.vtt"].external_id
    assert record.title == "Renamed copy"


def test_real_files_cut_anywhere_never_raise_anything_but_parse_error(
    subtitles: Path, tmp_path: Path
) -> None:
    for file in sorted(subtitles.iterdir()):
        data = file.read_bytes()
        for size in range(0, len(data), max(1, len(data) // 25)):
            cut = tmp_path / f"cut{file.suffix}"
            cut.write_bytes(data[:size])
            try:
                items = list(PARSERS[file.suffix](cut))
            except ParseError:
                continue
            assert all(isinstance(i, Record | Skipped) for i in items)


# Meeting transcripts as meeting tools write them -----------------------------------------------------------

VOICES = """WEBVTT
Kind: captions

NOTE written by the meeting tool
over two lines

1
00:00:01.000 --> 00:00:04.500
<v Dana Scully>Morning, everyone.</v>

2
00:00:05.000 --> 00:00:09.000 align:start position:10%
<v.loud Fox Mulder>We need to talk about <i>the budget</i>.
00:00:09.000 --> 00:01:02.250
<v Dana Scully>Agreed &amp; let's start.
<v Fox Mulder>Fine.
"""


def test_voice_tags_name_the_speakers(tmp_path: Path) -> None:
    path = tmp_path / "2024-03-05 Budget sync.vtt"
    path.write_text(VOICES, encoding="utf-8")
    record, skipped = _one(parse_vtt(path))
    assert skipped == []
    assert record.body.splitlines() == [
        "[00:00:01] Dana Scully: Morning, everyone.",
        "[00:00:05] Fox Mulder: We need to talk about the budget.",
        "[00:00:09] Dana Scully: Agreed & let's start.",
        "[00:00:09] Fox Mulder: Fine.",
    ]
    assert record.participants == (
        Participant(name="Dana Scully", role="speaker"),
        Participant(name="Fox Mulder", role="speaker"),
    )
    assert record.extra == {"speakers": ["Dana Scully", "Fox Mulder"], "duration_s": 61.25, "cues": 3}
    assert record.title == "2024-03-05 Budget sync"
    assert record.occurred_at == datetime(
        2024, 3, 5, tzinfo=UTC
    )  # a date in the name, read in local time (UTC)


def test_zoom_transcript_names_and_recording_time(tmp_path: Path) -> None:
    path = tmp_path / "GMT20240305-150012_Recording.transcript.vtt"
    path.write_text(
        "WEBVTT\n\n1\n00:00:02.130 --> 00:00:05.400\nDana Scully: Can everyone hear me?\n\n"
        "2\n00:00:06.000 --> 00:00:07.000\nFox Mulder: Yes.\n",
        encoding="utf-8",
    )
    record, _ = _one(parse_vtt(path))
    assert record.extra["speakers"] == ["Dana Scully", "Fox Mulder"]
    assert record.body == "[00:00:02] Dana Scully: Can everyone hear me?\n[00:00:06] Fox Mulder: Yes."
    assert record.occurred_at == datetime(2024, 3, 5, 15, 0, 12, tzinfo=UTC)
    assert record.title == "Recording"


def test_srt_in_windows_1252_with_crlf_missing_blank_lines_and_tags(tmp_path: Path) -> None:
    path = tmp_path / "interview.srt"
    text = (
        "1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>DANA: Café first?</i>\r\n"
        "2\r\n00:00:03,000 --> 00:00:04,000 X1:100 X2:200 Y1:10 Y2:20\r\n"
        '{\\an8}<font color="#fff">Fox: Sure.</font>\r\n'
        "\r\n\r\n3\r\n00:00:05,000 --> 00:00:06,000\r\nNo speaker here.\r\n"
    )
    path.write_bytes(text.encode("cp1252"))
    record, _ = _one(parse_srt(path))
    assert record.body.splitlines() == [
        "[00:00:01] DANA: Café first?",
        "[00:00:03] Fox: Sure.",
        "[00:00:05] No speaker here.",
    ]
    assert record.extra["speakers"] == ["DANA", "Fox"] and record.extra["cues"] == 3


def test_a_cue_with_an_impossible_time_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "bad cue.vtt"
    path.write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nfine\n\n00:00:75.000 --> 00:00:80.000\nbroken\n",
        encoding="utf-8",
    )
    record, skipped = _one(parse_vtt(path))
    assert record.body == "[00:00:01] fine"
    assert len(skipped) == 1 and "line 6" in skipped[0].where and "not a valid time" in skipped[0].reason


def test_plain_text_transcripts_in_their_common_shapes(tmp_path: Path) -> None:
    otter = tmp_path / "standup.txt"
    otter.write_text(
        "Title: Standup\nDate: 2024-03-05T09:30:00+01:00\n\n"
        "Dana Scully  0:04\nMorning. Two things today.\nFirst, the budget.\n\n"
        "Fox Mulder  1:02:03\nAgreed.\n",
        encoding="utf-8",
    )
    record, _ = _one(parse_transcript_text(otter))
    assert record.body.splitlines() == [
        "[00:00:04] Dana Scully: Morning. Two things today. First, the budget.",
        "[01:02:03] Fox Mulder: Agreed.",
    ]
    assert record.occurred_at == datetime(2024, 3, 5, 8, 30, tzinfo=UTC)
    assert record.source == "transcript" and record.extra["duration_s"] == pytest.approx(3719.0)

    bracketed = tmp_path / "call.txt"
    bracketed.write_text(
        "[00:01:02] Dana: Hello\n[00:01:10] Fox: Hi Dana\nstill Fox\n\nNote: not a person\n", encoding="utf-8"
    )
    record, _ = _one(parse_transcript_text(bracketed))
    assert record.body.splitlines() == [
        "[00:01:02] Dana: Hello",
        "[00:01:10] Fox: Hi Dana still Fox",
        "Fox: Note: not a person",
    ]
    assert record.extra["speakers"] == ["Dana", "Fox"]

    prose = tmp_path / "notes.txt"
    prose.write_text("We met about the budget.\nNo one took minutes.\n", encoding="utf-8")
    record, _ = _one(parse_transcript_text(prose))
    assert record.body == "We met about the budget. No one took minutes."
    assert record.extra == {"speakers": [], "duration_s": None, "cues": 1}


@pytest.mark.parametrize("parser", [parse_vtt, parse_srt, parse_transcript_text])
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\r\n \r\n", "empty file"),
        (b"\x00\x01\x02PK\x03\x04" * 20, "binary data"),
        (b"\xef\xbb\xbfWEBVTT\n\n", "(no cues|empty file|no transcript text)"),
    ],
)
def test_empty_or_binary_files_are_parse_errors(
    tmp_path: Path, parser: Callable[[Path], Parsed], content: bytes, reason: str
) -> None:
    path = tmp_path / "broken"
    path.write_bytes(content)
    if parser is parse_transcript_text and content.endswith(b"WEBVTT\n\n"):
        record, _ = _one(parser(path))  # a lone word is a (tiny) transcript as plain text
        assert record.body == "WEBVTT"
        return
    with pytest.raises(ParseError, match=reason):
        list(parser(path))


def test_text_that_is_not_webvtt_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.vtt"
    path.write_text("just some notes\n", encoding="utf-8")
    with pytest.raises(ParseError, match="not WebVTT"):
        list(parse_vtt(path))
    missing = tmp_path / "missing.srt"
    with pytest.raises(ParseError, match="cannot be read"):
        list(parse_srt(missing))
