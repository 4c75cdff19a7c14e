"""Token estimates, splitting at natural boundaries without losing a character, and document chunks."""

from __future__ import annotations

import itertools
import random
import re
from io import BytesIO
from typing import Any

import PIL.Image
import pytest

from extractor.documents import Chunk, chunk_document, merge_results, split_text
from extractor.errors import ConfigurationError
from extractor.sources import Document, Image, Page, estimate_document_tokens, estimate_tokens

WORDS = ["invoice", "total", "amount", "net", "tax", "due", "date", "customer", "supplier", "order", "widget", "gadget"]


def _paragraphs(n_chars: int, seed: int = 7) -> tuple[str, list[str]]:
    """A text of about `n_chars` characters: paragraphs of sentences, each paragraph naming one SKU."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    skus: list[str] = []
    size = 0
    while size < n_chars:
        sku = f"SKU-{len(paragraphs):06d}"
        sentences = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))).capitalize() + rng.choice(".!?")
            for _ in range(rng.randint(2, 12))
        ]
        sentences.insert(rng.randint(0, len(sentences)), f"Item {sku} ships.")
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        skus.append(sku)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)[:n_chars], skus


def _check_cover(text: str, chunks: list[Chunk], max_chars: int, overlap: int) -> None:
    assert chunks[0].start == 0
    assert chunks[-1].end == len(text)
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert chunk.text == text[chunk.start : chunk.end]
        assert 0 < len(chunk.text) <= max_chars
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start
        shared = before.end - after.start
        if text[before.end - 1] == "\f" or after.pages[:1] != before.pages[-1:]:
            assert shared == 0  # cut between pages: nothing split, nothing repeated
        else:
            assert 0 < shared <= overlap if overlap else shared == 0  # overlapping (unless none): nothing lost


# --- estimate -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("abc", 1),
        ("abcd", 2),
        ("1234567890", 10),  # digits count one each: tokenizers split them
        ("a b", 2),
        ("Hello, world!", 4 + 2 + 1),  # 10 letters -> 4, 2 punctuation, 1 space -> 1
        ("日本語", 5),  # 9 UTF-8 bytes / 2
        ("\u00e9t\u00e9", 1 + 2),  # t -> 1, two 2-byte letters -> 2
    ],
)
def test_estimate_tokens(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_estimate_is_at_least_a_common_upper_bound() -> None:
    text, _ = _paragraphs(50_000)
    # BPE tokenizers give English prose about 4 characters a token; the estimate stays well above that
    assert estimate_tokens(text) >= len(text) / 3.5
    assert estimate_tokens(text) <= len(text)


def test_document_estimate_counts_images() -> None:
    image = Image.from_bytes(_png())
    doc = Document(name="d", kind="pdf", pages=[Page(1, "abcdef"), Page(2, "", [image, image])])
    assert estimate_document_tokens(doc) == estimate_tokens(doc.text) + 3200
    assert estimate_document_tokens(doc, image_tokens=85) == estimate_tokens(doc.text) + 170


# --- split_text -------------------------------------------------------------------------------------


def test_two_million_characters_split_at_paragraphs_and_merged_back() -> None:
    text, skus = _paragraphs(2_000_000)
    assert len(text) == 2_000_000
    chunks = split_text(text, max_chars=8000, overlap=200)
    _check_cover(text, chunks, 8000, 200)
    assert len(chunks) < 2_000_000 / 4000  # every chunk more than half full
    # paragraphs are shorter than half a chunk: every cut is at a paragraph boundary
    assert all(text[c.end - 2 : c.end] == "\n\n" and text[c.end] != "\n" for c in chunks[:-1])
    # read for a list, the chunks do not overlap: each SKU is in exactly one chunk, so the merge needs no
    # de-duplication (and two equal rows stay two rows)
    rows = split_text(text, max_chars=8000, overlap=200, rows=True)
    _check_cover(text, rows, 8000, 0)
    assert all(text[c.end - 1] == "\n" for c in rows[:-1])  # cut at line ends
    values: list[dict[str, Any]] = [
        {
            "title": "Catalogue" if c.index == 0 else None,
            "items": [{"sku": s} for s in re.findall(r"SKU-\d{6}\b", c.text)],
            "total": len(skus) if c.index == len(rows) - 1 else None,
        }
        for c in rows
    ]
    merged = merge_results(values)
    found = [item["sku"] for item in merged.value["items"]]
    assert sum(len(v["items"]) for v in values) == len(found)  # nothing read twice
    assert found == re.findall(r"SKU-\d{6}\b", text)  # every SKU once, in text order
    assert len(found) in (len(skus), len(skus) - 1)  # the text was cut at 2,000,000 characters
    assert merged.value["title"] == "Catalogue"
    assert merged.value["total"] == len(skus)
    assert merged.provenance["$.title"] == 0
    assert merged.provenance["$.total"] == len(rows) - 1
    chunk_of = {item["sku"]: index for index, value in enumerate(values) for item in value["items"]}
    for i, sku in enumerate(found):
        assert merged.provenance[f"$.items[{i}]"] == chunk_of[sku]
        assert merged.provenance[f"$.items[{i}].sku"] == chunk_of[sku]
    assert merged.conflicts == {}


def test_one_long_paragraph_is_cut_at_sentence_ends() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(3000))
    chunks = split_text(text, max_chars=1000, overlap=100)
    _check_cover(text, chunks, 1000, 100)
    assert all(text[c.end - 2 : c.end] == ". " for c in chunks[:-1])


def test_words_without_sentences_are_cut_at_whitespace() -> None:
    text = " ".join(f"word{i}" for i in range(5000))
    chunks = split_text(text, max_chars=500, overlap=50)
    _check_cover(text, chunks, 500, 50)
    assert all(text[c.end - 1] == " " for c in chunks[:-1])
    # the overlap starts at a word start
    assert all(text[c.start - 1] == " " for c in chunks[1:])


def test_text_without_spaces_is_cut_hard() -> None:
    text = "x" * 10_001
    chunks = split_text(text, max_chars=1000, overlap=100)
    _check_cover(text, chunks, 1000, 100)
    assert [len(c.text) for c in chunks[:-1]] == [1000] * (len(chunks) - 1)


def test_form_feeds_are_preferred_page_boundaries() -> None:
    pages = [f"Page {n}. " + "Some words here. " * 30 for n in range(1, 21)]
    text = "\f".join(pages)
    chunks = split_text(text, max_chars=2000, overlap=100)
    _check_cover(text, chunks, 2000, 100)
    assert all(text[c.end - 1] == "\f" for c in chunks[:-1])


def test_page_offsets_give_boundaries_and_page_numbers() -> None:
    pages = ["Alpha. " * 100, "Beta. " * 100, "Gamma. " * 100, "Delta. " * 100]
    doc = Document(name="d", kind="pdf", pages=[Page(n, t.strip()) for n, t in enumerate(pages, start=1)])
    chunks = split_text(doc.text, max_chars=1400, overlap=50, page_offsets=doc.page_offsets)
    _check_cover(doc.text, chunks, 1400, 50)
    starts = {offset for _, offset in doc.page_offsets}
    assert all(c.end in starts for c in chunks[:-1])
    for chunk in chunks:
        expected = tuple(
            p.number for p in doc.pages if p.char_offset < chunk.end and chunk.start < p.char_offset + len(p.text) + 2
        )
        assert chunk.pages == expected
    plain = split_text(doc.text, max_chars=1400, overlap=50, page_offsets=[offset for _, offset in doc.page_offsets])
    assert [c.pages for c in plain] == [c.pages for c in chunks]


def test_short_and_empty_texts() -> None:
    assert split_text("short", max_chars=10) == [Chunk(0, "short", 0, 5)]
    assert split_text("", max_chars=10) == [Chunk(0, "", 0, 0)]


def test_overlap_is_capped_at_a_quarter_of_max_chars() -> None:
    text = "abc " * 1000
    chunks = split_text(text, max_chars=400, overlap=10_000)
    _check_cover(text, chunks, 400, 100)


@pytest.mark.parametrize(("max_chars", "overlap"), [(0, 10), (-5, 10), (100, -1), (True, 0)])
def test_bad_limits(max_chars: int, overlap: int) -> None:
    with pytest.raises(ConfigurationError):
        split_text("abc", max_chars=max_chars, overlap=overlap)


# --- chunk_document --------------------------------------------------------------------------------


def _png() -> bytes:
    out = BytesIO()
    PIL.Image.new("RGB", (8, 8), "green").save(out, "PNG")
    return out.getvalue()


def test_page_images_count_toward_each_chunk_and_chunks_split_between_pages() -> None:
    image = Image.from_bytes(_png())
    text, _ = _paragraphs(30_000, seed=3)
    halves = [text[:15_000].strip(), text[15_000:].strip()]
    doc = Document(
        name="d",
        kind="pdf",
        pages=[Page(1, halves[0]), Page(2, "", [image]), Page(3, halves[1]), Page(4, "", [image, image])],
    )
    chunks = chunk_document(doc, max_tokens=4000)
    assert all(c.estimate_tokens() <= 4000 for c in chunks)  # text and images together fit
    assert max(c.estimate_tokens() for c in chunks) > 3000  # not needlessly small
    assert sum(len(c.images) for c in chunks) == 3  # each image sent once
    assert chunks[0].start == 0 and chunks[-1].end == len(doc.text)
    assert all(b.start <= a.end for a, b in itertools.pairwise(chunks))  # no gap
    starts = [page.char_offset for page in doc.pages]
    ends = [*starts[1:], len(doc.text)]
    for chunk in chunks:  # within one page (a page too long alone), or whole pages
        assert len(chunk.pages) == 1 or (chunk.start in starts and chunk.end in ends), chunk
    by_page = [c for c in chunks if 2 in c.pages]
    assert len(by_page) == 1 and by_page[0].images == (image,)
    last = chunks[-1]
    assert last.pages == (4,) and last.images == (image, image)  # page 3's text left no room for them
    assert [p["type"] for p in last.to_parts()] == ["image_url", "image_url"]
    # a page too long alone is split within its text; its images go with its first piece
    long_page = Document(name="e", kind="pdf", pages=[Page(1, halves[0], [image])])
    pieces = chunk_document(long_page, max_tokens=2500)
    assert len(pieces) > 1 and pieces[0].images == (image,) and all(not c.images for c in pieces[1:])
    assert all(c.estimate_tokens() <= 2500 for c in pieces)


def test_forty_page_images_against_a_small_context_are_split_between_pages() -> None:
    image = Image.from_bytes(_png())
    scan = Document(name="scan.pdf", kind="pdf", pages=[Page(n, "", [image]) for n in range(1, 41)])
    assert estimate_document_tokens(scan) == 64_000 + estimate_tokens(scan.text)  # page separators only
    chunks = chunk_document(scan, max_tokens=30_000)
    assert [len(c.images) for c in chunks] == [18, 18, 4]  # 18 x 1,600 = 28,800 tokens a request at most
    assert [c.pages for c in chunks] == [tuple(range(1, 19)), tuple(range(19, 37)), tuple(range(37, 41))]


def test_chunk_document_by_chars_and_both_limits() -> None:
    text, _ = _paragraphs(20_000, seed=5)
    doc = Document.from_text(text)
    by_chars = chunk_document(doc, max_chars=3000)
    _check_cover(text, by_chars, 3000, 200)
    assert all(c.pages == (1,) for c in by_chars)
    both = chunk_document(doc, max_chars=1000, max_tokens=100_000)
    _check_cover(text, both, 1000, 200)
    with pytest.raises(ConfigurationError, match="needs max_chars or max_tokens"):
        chunk_document(doc)
    with pytest.raises(ConfigurationError, match="max_tokens=3"):
        chunk_document(doc, max_tokens=3)


def test_image_only_document_is_one_chunk_with_its_images() -> None:
    image = Image.from_bytes(_png())
    doc = Document(name="scan", kind="image", pages=[Page(1, "", [image])])
    chunks = chunk_document(doc, max_tokens=2000)
    assert len(chunks) == 1
    assert chunks[0].text == "" and chunks[0].images == (image,) and chunks[0].pages == (1,)
    assert chunks[0].to_parts() == [image.to_part()]
    with pytest.raises(ConfigurationError, match=r"page 1 of scan holds 1 image\(s\) \(~1600 tokens\)"):
        chunk_document(doc, max_tokens=1000)  # an image cannot be split: refused, not sent to be rejected


def test_digit_heavy_text_fits_the_token_budget() -> None:
    rows = "\n".join(f"{i:08d} {i * 7 % 100000:05d},{i % 100:02d}" for i in range(20_000))
    chunks = chunk_document(Document.from_text(rows), max_tokens=4000)
    assert all(estimate_tokens(c.text) <= 4000 for c in chunks)
    _check_cover(rows, chunks, len(rows), 200)
