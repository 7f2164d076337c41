"""Tokenizers: the estimate, tiktoken only from its local cache (never a download)."""

from __future__ import annotations

import hashlib
import itertools
import re
from pathlib import Path
from typing import Any

import pytest

import l0_core as l0
from l0_core.text import tokenizers
from l0_core.text.tokenizers import EstimateTokenizer, TiktokenTokenizer, resolve_tokenizer

tiktoken = pytest.importorskip("tiktoken")
tiktoken_load = pytest.importorskip("tiktoken.load")

DOC = (Path(__file__).parent / "data" / "alice-chapter-1.txt").read_text(encoding="utf-8")


def test_estimate_counts_words_numbers_and_punctuation() -> None:
    est = EstimateTokenizer()
    assert est.count("Hello, world!") == 4
    assert est.count("internationalisation") == 3  # 8 + 8 + 4 letters
    assert est.count("12345 apples") == 3          # "123", "45", "apples"
    assert est.count("   ") == 0
    assert est.offsets("  Hi there.") == [2, 5, 10]


def test_estimate_offsets_match_the_tokens() -> None:
    est = EstimateTokenizer()
    for text in (DOC, "  leading space", "naïve café — 3.14 ü_x", "a\n\nb"):
        pattern = re.compile(r"[^\W\d_]{1,8}|\d{1,3}|[^\w\s]|_+")  # (no dense scripts here)
        assert est.offsets(text) == [m.start() for m in pattern.finditer(text)]
        assert len(est.offsets(text)) == est.count(text)


def test_estimate_counts_scripts_without_spaces_per_character() -> None:
    est = EstimateTokenizer()
    chinese = "这是一个很长的中文句子，用于测试分词器的估计值。"  # 22 Han, 2 punctuation
    assert est.count(chinese) == 24
    assert est.count("テストです") == 5 and est.count("한국어") == 3 and est.count("ภาษา") == 4
    assert est.count("abc中文 def") == 4  # a Latin run stops at a Han character
    assert est.offsets("ab中文 cd") == [0, 2, 3, 5]
    assert est.count("naïve café") == 2  # other letters still run together


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty tiktoken cache, and any attempt to fetch a file fails the test."""

    def fetch(blobpath: str) -> bytes:
        raise AssertionError(f"tiktoken tried to fetch {blobpath}")

    monkeypatch.setattr(tiktoken_load, "read_file", fetch)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_no_cached_encoding_means_the_estimate_and_no_download(no_network: Path) -> None:
    assert TiktokenTokenizer.cached("cl100k_base") is None
    assert TiktokenTokenizer.cached("o200k_base") is None
    assert resolve_tokenizer("auto").name == "estimate"
    assert l0.Window.create(DOC, size=500, overlap=0).tokenizer.name == "estimate"  # type: ignore[union-attr]
    with pytest.raises(l0.ConfigError, match="L0 never downloads it"):
        resolve_tokenizer("tiktoken:cl100k_base")


def test_a_corrupt_cached_file_is_not_used_nor_removed(no_network: Path) -> None:
    url = tokenizers._ENCODINGS["cl100k_base"][0]
    cached = no_network / hashlib.sha1(url.encode()).hexdigest()
    cached.write_bytes(b"not the encoding")
    assert TiktokenTokenizer.cached("cl100k_base") is None
    assert cached.exists()  # tiktoken would delete it and download it again


def test_caching_switched_off_is_never_a_download(monkeypatch: pytest.MonkeyPatch,
                                                  no_network: Path) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    assert TiktokenTokenizer.cached("cl100k_base") is None


def byte_encoding() -> Any:
    """A tiny tiktoken encoding built locally: one token per byte."""
    return tiktoken.Encoding(name="bytes", pat_str=r"\S+|\s+",
                             mergeable_ranks={bytes([i]): i for i in range(256)},
                             special_tokens={})


def test_a_valid_cached_file_is_loaded(monkeypatch: pytest.MonkeyPatch, no_network: Path) -> None:
    content = b"encoding file"
    url = "https://example.invalid/bytes.tiktoken"
    monkeypatch.setitem(tokenizers._ENCODINGS, "bytes",
                        (url, hashlib.sha256(content).hexdigest()))
    (no_network / hashlib.sha1(url.encode()).hexdigest()).write_bytes(content)
    loaded: list[str] = []

    def get_encoding(name: str) -> Any:
        loaded.append(name)
        return byte_encoding()

    monkeypatch.setattr(tiktoken, "get_encoding", get_encoding)
    tok = resolve_tokenizer("tiktoken:bytes")
    assert loaded == ["bytes"] and tok.name == "tiktoken:bytes"


def test_tiktoken_encoding_object() -> None:
    tok = resolve_tokenizer(byte_encoding())
    assert isinstance(tok, TiktokenTokenizer) and tok.name == "tiktoken:bytes"
    assert tok.count("abc de") == 6
    assert list(tok.offsets("ab é")) == [0, 1, 2, 3, 3]  # é is two bytes
    window = l0.Window.create(DOC, size=500, overlap=50, tokenizer=byte_encoding())
    assert all(c.token_count == len(c.text.encode()) <= 500 for c in window)
    assert "".join(c.text[max(0, prev.end - c.start):] if i else c.text
                   for i, (prev, c) in enumerate(zip([window[0], *window], window,
                                                     strict=False))) == DOC


def test_tokens_sharing_a_start_never_stall_the_window() -> None:
    # byte tokens: every character of these takes 2-4 tokens with the same start
    doc = "日本語のテキスト😀 " * 200 + "é" * 300
    for size, overlap in ((3, 2), (4, 3), (50, 10)):
        window = l0.Window.create(doc, size=size, overlap=overlap, tokenizer=byte_encoding())
        chunks = list(window)
        assert chunks[0].start == 0 and chunks[-1].end == len(doc)
        assert all(a.start < b.start <= a.end < b.end
                   for a, b in itertools.pairwise(chunks))
