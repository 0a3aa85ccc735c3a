"""libretranslatepy, unchanged from PyPI, against a running `tarjama serve`: languages, a
translation equal to `tarjama translate` of the same text, detection, and API keys.

Usage: serve_client.py URL KEYED_URL KEY LINES_FILE ENGLISH_FILE
  URL        a server without API keys
  KEYED_URL  a server started with --api-keys holding KEY
  LINES_FILE Arabic lines; ENGLISH_FILE `tarjama translate` of them, line by line
"""

from __future__ import annotations

import sys
import urllib.error

from libretranslatepy import LibreTranslateAPI


def main() -> None:
    url, keyed_url, key, lines_file, english_file = sys.argv[1:6]
    lines = open(lines_file, encoding="utf-8").read().splitlines()
    english = open(english_file, encoding="utf-8").read().splitlines()
    assert len(lines) == len(english), (len(lines), len(english))

    lt = LibreTranslateAPI(url)
    languages = lt.languages()
    by_code = {lang["code"]: lang for lang in languages}
    assert by_code["ar"]["targets"] == ["en"], languages
    assert by_code["ar"]["name"] == "Arabic", languages

    for arabic, want in zip(lines, english):
        got = lt.translate(arabic, "ar", "en")
        assert got == want, f"{arabic!r}: {got!r} != {want!r}"
    auto = lt.translate(lines[0], "auto", "en")
    assert auto == english[0], (auto, english[0])

    detected = lt.detect(lines[0])
    assert detected[0]["language"] == "ar", detected
    assert 0 < detected[0]["confidence"] <= 100, detected

    try:
        lt.translate(lines[0], "ar", "de")
        raise AssertionError("ar -> de was translated")
    except urllib.error.HTTPError as e:
        assert e.code == 400, e.code

    keyed = LibreTranslateAPI(keyed_url, api_key=key)
    assert keyed.translate(lines[1], "ar", "en") == english[1]
    for client in (LibreTranslateAPI(keyed_url), LibreTranslateAPI(keyed_url, api_key="wrong")):
        try:
            client.translate(lines[1], "ar", "en")
            raise AssertionError("translated without a valid key")
        except urllib.error.HTTPError as e:
            assert e.code == 403, e.code
    assert keyed.languages() == languages

    print(f"serve-client: libretranslatepy translated {len(lines) + 2} texts as `tarjama translate` does, "
          f"listed {len(languages)} languages, detected Arabic, and was refused without a valid key")


if __name__ == "__main__":
    main()
