"""Every text of the pages is readable: WCAG AA contrast (4.5:1), computed from the stylesheet and
the verdict and badge colours the templates paint (white text on each)."""
from __future__ import annotations

import re

import pytest

from harness.outputs import badges, pages
from harness.paths import ROOT

AA = 4.5
STYLESHEET = (ROOT / "harness" / "templates" / "report.css").read_text()
HEX = r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b"


def rgb(colour: str) -> tuple[float, float, float]:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return tuple(int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4))


def luminance(colour: str) -> float:
    """WCAG 2's relative luminance."""
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, other: str) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


# Rules that paint a shape with no text in it: the timeline's band and its legend sample.
DECORATIVE = ("::before", ".band-sample")


def declarations(prop: str) -> set[str]:
    """The colours the stylesheet gives `prop` (`color`, `background`) in rules that hold text."""
    found = set()
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", STYLESHEET):
        if not any(mark in selector for mark in DECORATIVE):
            found |= set(re.findall(rf"(?<![-\w]){prop}\s*:\s*({HEX})", body))
    return found


TEXTS = declarations("color")
BACKGROUNDS = declarations("background")
WHITE = {"#fff", "#ffffff"}
LIGHT = {b for b in BACKGROUNDS if luminance(b) > 0.5} | {"#ffffff"}
DARK = {b for b in BACKGROUNDS if luminance(b) <= 0.5} | set(pages.COLOURS.values()) | set(badges.COLOURS.values())


def test_the_measure_is_wcags():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#777777", "#ffffff"), 2) == 4.48   # the usual example of a grey just below AA
    assert TEXTS and BACKGROUNDS and WHITE & TEXTS


@pytest.mark.parametrize("text", sorted(TEXTS - WHITE))
def test_dark_text_on_every_light_background(text):
    for background in LIGHT:
        assert contrast(text, background) >= AA, f"{text} on {background}: {contrast(text, background):.2f}:1"


@pytest.mark.parametrize("background", sorted(DARK))
def test_white_text_on_every_verdict_badge_and_dark_background(background):
    assert contrast("#ffffff", background) >= AA, f"white on {background}: {contrast('#ffffff', background):.2f}:1"


def test_colours_say_what_they_mean():
    """Present red, absent green, cannot tell grey, other-failure amber (hue, not just lightness)."""
    def hue(colour):
        r, g, b = rgb(colour)
        return max(("red", r), ("green", g), ("blue", b), key=lambda pair: pair[1])[0]

    colours = pages.COLOURS
    assert hue(colours["present"]) == "red" and hue(colours["absent"]) == "green"
    assert colours["error"] == colours["skipped"] and len(set(rgb(colours["skipped"]))) <= 3
    r, g, b = rgb(colours["other-failure"])
    assert r > g > b, "amber: red over green over blue"
    assert badges.COLOURS["red"] == colours["present"] and badges.COLOURS["brightgreen"] == colours["absent"]
