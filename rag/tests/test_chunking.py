import re

import pytest

from rag.chunking import Chunk, chunk_sections
from rag.extract import Section

# Sentences of distinct words, so that a test can tell exactly where a chunk starts and ends.
SENTENCES = [f"Sentence {n} tells about topic{n} in detail." for n in range(60)]


def words_of(text: str) -> set[str]:
    return set(re.findall(r"\S+", text))


def shared_text(previous: str, following: str) -> str:
    """The longest end of `previous` that `following` starts with."""
    return next((previous[start:] for start in range(len(previous)) if following.startswith(previous[start:])), "")


def test_small_paragraphs_are_packed_into_one_chunk_with_the_heading_first():
    section = Section(heading="Opening hours", paragraphs=["Monday to Friday, 9 to 18.", "Saturday, 10 to 14."])

    assert chunk_sections([section]) == [
        Chunk(
            position=0, heading="Opening hours", text="Opening hours\nMonday to Friday, 9 to 18.\nSaturday, 10 to 14."
        )
    ]


def test_text_without_a_heading_has_no_heading_line():
    assert chunk_sections([Section(heading="", paragraphs=["Welcome."])]) == [
        Chunk(position=0, heading="", text="Welcome.")
    ]


def test_sections_never_share_a_chunk_and_empty_ones_are_skipped():
    sections = [
        Section(heading="Intro", paragraphs=["Hello."]),
        Section(heading="Empty", paragraphs=[]),
        Section(heading="Blank", paragraphs=["   "]),
        Section(heading="Prices", paragraphs=["Cheap."]),
    ]

    chunks = chunk_sections(sections)

    assert [(chunk.position, chunk.heading, chunk.text) for chunk in chunks] == [
        (0, "Intro", "Intro\nHello."),
        (1, "Prices", "Prices\nCheap."),
    ]


def test_paragraphs_are_packed_up_to_max_chars_and_kept_whole():
    paragraphs = [" ".join(SENTENCES[n : n + 2]) for n in range(0, 20, 2)]  # about 80 characters each
    chunks = chunk_sections([Section(heading="Guide", paragraphs=paragraphs)], max_chars=300, overlap_chars=0)

    assert len(chunks) > 1
    assert all(len(chunk.text) <= 300 for chunk in chunks)
    assert all(chunk.text.startswith("Guide\n") for chunk in chunks)
    bodies = [chunk.text.removeprefix("Guide\n").split("\n") for chunk in chunks]
    assert [paragraph for body in bodies for paragraph in body] == paragraphs
    # Greedy: no chunk could have taken the next chunk's first paragraph.
    for chunk, following in zip(chunks, bodies[1:], strict=False):
        assert len(chunk.text) + 1 + len(following[0]) > 300


def test_consecutive_chunks_of_a_section_overlap():
    paragraphs = [" ".join(SENTENCES[n : n + 3]) for n in range(0, 30, 3)]
    chunks = chunk_sections([Section(heading="Guide", paragraphs=paragraphs)], max_chars=400, overlap_chars=100)

    assert len(chunks) > 2
    for previous, chunk in zip(chunks, chunks[1:], strict=False):
        overlap = shared_text(previous.text.removeprefix("Guide\n"), chunk.text.removeprefix("Guide\n"))
        assert 0 < len(overlap) <= 100
        assert re.fullmatch(r"Sentence \d+ .*\.", overlap)  # whole sentences


def test_overlap_falls_back_to_words_when_the_last_sentence_is_long():
    sentence = " ".join(f"word{n}" for n in range(200)) + "."
    chunks = chunk_sections([Section(heading="", paragraphs=[sentence])], max_chars=300, overlap_chars=50)

    assert len(chunks) > 2
    for previous, chunk in zip(chunks, chunks[1:], strict=False):
        overlap = shared_text(previous.text, chunk.text)
        assert 0 < len(overlap) <= 50
        assert previous.text[-len(overlap) - 1] == " "  # starts at a word


def test_chunks_of_different_sections_do_not_overlap():
    sections = [Section(heading="A", paragraphs=["First section."]), Section(heading="B", paragraphs=["Second."])]
    assert [chunk.text for chunk in chunk_sections(sections)] == ["A\nFirst section.", "B\nSecond."]


def test_a_huge_paragraph_is_split_at_sentence_ends():
    paragraph = " ".join(SENTENCES)
    chunks = chunk_sections([Section(heading="Story", paragraphs=[paragraph])], max_chars=500, overlap_chars=100)

    assert len(chunks) > 5
    sentence_set = set(SENTENCES)
    for chunk in chunks:
        assert len(chunk.text) <= 500
        body = chunk.text.removeprefix("Story\n")
        assert all(sentence in sentence_set for sentence in re.split(r"(?<=\.) ", body))
    covered = {sentence for chunk in chunks for sentence in re.split(r"(?<=\.) ", chunk.text.removeprefix("Story\n"))}
    assert covered == sentence_set


def test_a_huge_sentence_is_split_between_words_never_inside_one():
    words = [f"w{n:04d}" for n in range(1000)]
    chunks = chunk_sections([Section(heading="", paragraphs=[" ".join(words)])], max_chars=200, overlap_chars=40)

    assert all(len(chunk.text) <= 200 for chunk in chunks)
    assert all(words_of(chunk.text) <= set(words) for chunk in chunks)  # every token is a whole word
    assert set().union(*(words_of(chunk.text) for chunk in chunks)) == set(words)


def test_a_word_longer_than_a_chunk_is_cut():
    token = "x" * 450
    chunks = chunk_sections([Section(heading="", paragraphs=[token])], max_chars=200, overlap_chars=20)

    assert all(len(chunk.text) <= 200 for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks) == token


def test_a_long_heading_is_shortened_in_the_text_but_kept_whole():
    heading = "Frequently asked questions about our delivery service " * 3
    chunks = chunk_sections([Section(heading=heading, paragraphs=["Yes."])], max_chars=100, overlap_chars=20)

    assert chunks[0].heading == heading.strip()
    first_line = chunks[0].text.split("\n")[0]
    assert first_line.endswith("…")
    assert len(first_line) <= 25
    assert chunks[0].text.endswith("\nYes.")


def test_whitespace_inside_paragraphs_is_collapsed():
    chunks = chunk_sections([Section(heading=" Menu\n", paragraphs=["  Soup \n of the\tday  "])])
    assert chunks[0].text == "Menu\nSoup of the day"


def test_chunking_is_deterministic():
    sections = [Section(heading="Story", paragraphs=[" ".join(SENTENCES)])]
    assert chunk_sections(sections, max_chars=500) == chunk_sections(sections, max_chars=500)


@pytest.mark.parametrize(("max_chars", "overlap_chars"), [(10, 0), (300, 200), (300, -1)])
def test_unusable_sizes_are_refused(max_chars: int, overlap_chars: int):
    with pytest.raises(ValueError):
        chunk_sections([Section(heading="", paragraphs=["Hi."])], max_chars=max_chars, overlap_chars=overlap_chars)
