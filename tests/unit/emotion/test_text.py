import unicodedata

from moodtune.emotion.text import normalize_text


def test_nfc_composes_decomposed_hangul():
    decomposed = unicodedata.normalize("NFD", "행복해")
    assert decomposed != "행복해"
    assert normalize_text(decomposed) == "행복해"


def test_compatibility_jamo_survive():
    # NFKC would turn ㅋ (U+314B) into the conjoining ᄏ (U+110F); NFC must not.
    assert normalize_text("좋아 ㅋㅋㅋ ㅠㅠ") == "좋아 ㅋㅋㅋ ㅠㅠ"
    assert "\u110f" not in normalize_text("ㅋㅋ")


def test_whitespace_is_collapsed_and_trimmed():
    assert normalize_text("  너무\t\t슬퍼\n\n정말 \u3000 ") == "너무 슬퍼 정말"


def test_zero_width_characters_are_removed():
    assert normalize_text("행\u200b복\ufeff해") == "행복해"


def test_empty_and_blank():
    assert normalize_text("") == ""
    assert normalize_text(" \n\t ") == ""


def test_idempotent():
    once = normalize_text(" 오늘은  기분이 \n 좋아 ㅎㅎ ")
    assert normalize_text(once) == once
