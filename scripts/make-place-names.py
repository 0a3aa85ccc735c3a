#!/usr/bin/env python3
"""Writes src/faithful/places.tsv: the English and Arabic names of countries, territories,
regions and cities, from the Unicode CLDR as the `babel` package ships it (PyPI).

The support check needs them because a place's English name is no transliteration of its
Arabic one ("Egypt" / مصر, "Morocco" / المغرب): without them only a translation could vouch for
a place, and a small model's own translation invents the same places its summaries do.

Rows: `english forms<TAB>arabic forms`, forms separated by `|`. Territories with a two-letter
code and the world regions come from `Locale.territories`; cities from the exemplar cities of
the CLDR time zones. A few international organisations follow, written by hand (CLDR has none;
see ORGANISATIONS), since summaries name them as readily as places.

Usage: /work/venv/fx/bin/python scripts/make-place-names.py   (needs `pip install babel`)
"""
import pathlib
import zoneinfo

import babel
from babel import Locale
from babel.dates import get_timezone_location

# The organisations and regions small models put into summaries most (seen in the evaluation
# drafts), with the Arabic names Arabic news uses for them.
ORGANISATIONS = [
    ("United Nations|UN", "الأمم المتحدة|الامم المتحدة"),
    ("Security Council", "مجلس الأمن"),
    ("European Union|EU", "الاتحاد الأوروبي|الاتحاد الاوروبي"),
    ("NATO", "الناتو|حلف شمال الأطلسي|الأطلسي"),
    ("Arab League", "الجامعة العربية|جامعة الدول العربية"),
    ("African Union", "الاتحاد الأفريقي|الاتحاد الإفريقي"),
    ("World Health Organization|WHO", "منظمة الصحة العالمية"),
    ("International Monetary Fund|IMF", "صندوق النقد الدولي"),
    ("World Bank", "البنك الدولي"),
    ("OPEC", "أوبك"),
    ("Middle East", "الشرق الأوسط"),
    ("Gulf|Persian Gulf|Arabian Gulf", "الخليج"),
]

# English forms CLDR gives only in its "short" or "variant" names, which babel does not expose.
EXTRA_ENGLISH = {
    "US": ["US", "USA", "America"],
    "GB": ["UK", "Britain", "Great Britain"],
    "AE": ["UAE", "Emirates"],
    "PS": ["Palestine"],
    "KR": ["South Korea"],
    "KP": ["North Korea"],
    "CD": ["Congo"],
    "CZ": ["Czech Republic"],
}
EXTRA_ARABIC = {
    "US": ["أمريكا", "أميركا", "الولايات المتحدة الأمريكية"],
    "GB": ["بريطانيا"],
    "AE": ["الإمارات"],
    "PS": ["فلسطين"],
}


def main():
    en, ar = Locale("en"), Locale("ar")
    rows = []
    for code, english in en.territories.items():
        if code not in ar.territories or code in ("ZZ", "EU", "EZ", "UN", "QO"):
            continue
        if not (code.isalpha() and len(code) == 2) and not code.isdigit():
            continue
        forms = [english] + EXTRA_ENGLISH.get(code, [])
        arabic = [ar.territories[code]] + EXTRA_ARABIC.get(code, [])
        rows.append((forms, arabic))
    seen = set()
    for zone in sorted(zoneinfo.available_timezones()):
        if "/" not in zone or zone.startswith(("Etc/", "SystemV/", "US/")):
            continue
        try:
            english = get_timezone_location(zone, locale="en", return_city=True)
            arabic = get_timezone_location(zone, locale="ar", return_city=True)
        except Exception:
            continue
        if english and arabic and english not in seen and english != arabic:
            seen.add(english)
            rows.append(([english], [arabic]))
    for english, arabic in ORGANISATIONS:
        rows.append((english.split("|"), arabic.split("|")))
    out = pathlib.Path(__file__).resolve().parent.parent / "src/faithful/places.tsv"
    lines = [f"# English and Arabic place names: CLDR via babel {babel.__version__}; written by scripts/make-place-names.py"]
    for english, arabic in rows:
        clean = lambda forms: "|".join(dict.fromkeys(f.strip() for f in forms if f.strip()))
        lines.append(f"{clean(english)}\t{clean(arabic)}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{out}: {len(rows)} rows")


main()
