"""What a book's bytes are where they are not the UTF-8 text tinygpt reads, said so that the one-line error can
name the conversion that fixes it: UTF-16 saved without its byte-order mark, a Chinese, Japanese or Korean text in
an encoding from before UTF-8, and valid UTF-8 that is still not what its writer meant (mojibake: "â€œ" for "“")."""

from __future__ import annotations

import re


def utf16_without_bom(head: bytes) -> str | None:
    """UTF-16LE or UTF-16BE where the NUL bytes of these bytes fall on every other byte, as the high bytes of
    Latin text in UTF-16 do (a file saved without its byte-order mark); else None (a binary file)."""
    even, odd, half = head[0::2].count(0), head[1::2].count(0), len(head) // 2
    if half < 32 or min(even, odd) > half // 50 or max(even, odd) < half // 3:
        return None
    return "UTF-16BE" if even > odd else "UTF-16LE"


def cjk_encoding(raw: bytes) -> tuple[str, str] | None:
    """(encoding, language) where these bytes read as Chinese, Japanese or Korean text in an encoding saved before
    UTF-8 (GB18030/GBK, Big5, Shift-JIS, EUC-KR), else None. Judged on the first 64 kB: most of its bytes high (two
    a character there; a Latin text has a few), read without an error, and in the script the encoding is for (kana
    for Shift-JIS, Hangul for EUC-KR; GB18030 reads nearly any bytes: nine in ten of its characters in GB2312's)."""
    head = raw[:1 << 16]
    if len(head) < 64 or sum(b >= 0x80 for b in head) < 0.3 * len(head):
        return None
    kinds = (("SHIFT_JIS", "Japanese", 0.05, lambda c: "\u3040" <= c <= "\u30ff"),
             ("EUC-KR", "Korean", 0.5, lambda c: "\uac00" <= c <= "\ud7a3"),
             ("GB18030", "Chinese", 0.9, _in_gb2312),
             ("BIG5", "Chinese", 0.9, lambda c: "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uffef"))
    for enc, lang, share, ours in kinds:
        for cut in range(4):  # (the 64 kB may end inside a character)
            try:
                wide = [c for c in head[:len(head) - cut].decode(enc) if ord(c) >= 0x80]
            except UnicodeDecodeError:
                continue
            if wide and sum(map(ours, wide)) >= share * len(wide):
                return enc, lang
            break
    return None


def _in_gb2312(c: str) -> bool:
    try:
        c.encode("gb2312")
        return True
    except UnicodeEncodeError:
        return False


NON_ASCII = re.compile("[^\x00-\x7f]+")
C1_QUOTES = re.compile("[\x91-\x97]")  # cp1252's ‘ ’ “ ” • – — read as Latin-1


def garbled(text: str, limit: int = 4 << 20) -> str | None:
    """Why text that is valid UTF-8 is still not the text its writer meant, or None: UTF-8 read as cp1252 or
    Latin-1 and saved again ("â€œ" for "“", "Ã©" for "é": mojibake), or cp1252 converted as if it were Latin-1
    (its curly quotes and dashes become invisible C1 control characters). Judged on the first 2,000 runs of
    non-ASCII characters in its first ``limit`` characters, most of which must be garbled: a text that quotes some
    mojibake is not refused."""
    text = text[:limit]
    if text.isascii():
        return None
    runs = [m.group() for m, _ in zip(NON_ASCII.finditer(text), range(2000))]
    double = [(r, meant) for r in runs if (meant := _meant(r))]
    if len(double) >= 3 and 2 * len(double) >= len(runs):
        read_as = "latin1" if any("\x80" <= c <= "\x9f" for r, _ in double for c in r) else "cp1252"
        shown, meant = ("".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in double[0][0]), double[0][1])
        return (f'is garbled UTF-8 (mojibake: "{shown}" where "{meant}" was meant, {len(double):,} times): it was read as '
                f"{read_as} and saved again; undo that first, e.g. iconv -f utf-8 -t {read_as}")
    # (only those: a terminal's CSI, U+009B, is no quote; a regex: a Chinese book's runs are paragraphs long)
    if (c1 := len(C1_QUOTES.findall("".join(runs)))) >= 3:
        return (f"holds {c1:,} invisible C1 control characters (U+0091 to U+0097): Windows text (cp1252) converted as if it "
                "were Latin-1 turns its curly quotes and dashes into these; convert the original with iconv -f cp1252 -t utf-8")
    return None


def _meant(run: str) -> str | None:
    """The text a run of non-ASCII characters was before its UTF-8 bytes were read as cp1252 or Latin-1, or None."""
    try:
        raw = bytes(ord(c) if ord(c) < 256 else c.encode("cp1252")[0] for c in run)
        return raw.decode("utf-8")
    except (UnicodeError, IndexError):
        return None
